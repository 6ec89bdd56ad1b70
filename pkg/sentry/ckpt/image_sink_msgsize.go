package ckpt

import (
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/usermem"
)

// A datagram or seqpacket socket takes a write only as one whole message, and none larger than
// its buffer (EMSGSIZE). An image or tree stream written into one is therefore split: the first
// write that fails with EMSGSIZE halves the largest write the sink makes, and so on down to
// minMessageWrite. Unix sockets keep messages in order and lose none, so a reader that
// concatenates what it receives has the stream. (The fuzzer's tree freeze into a datagram
// socketpair failed with EIO, "message too long", before; docs/fuzzing.md, finding 5.)

// minMessageWrite is the smallest write a sink splits a refused message into.
const minMessageWrite = 4096

// messageLimit is the largest write a sink makes, in bytes; 0 is no limit.
type messageLimit int

// clip returns the part of src the next write passes.
func (l messageLimit) clip(src usermem.IOSequence) usermem.IOSequence {
	if l > 0 && src.NumBytes() > int64(l) {
		return src.TakeFirst(int(l))
	}
	return src
}

// shrink lowers the limit after a write of size bytes failed with err and reports whether the
// write should be retried smaller: only for EMSGSIZE, and not below minMessageWrite.
func (l *messageLimit) shrink(err error, size int64) bool {
	if !linuxerr.Equals(linuxerr.EMSGSIZE, err) || size <= minMessageWrite {
		return false
	}
	half := size / 2
	if half < minMessageWrite {
		half = minMessageWrite
	}
	*l = messageLimit(half)
	return true
}
