package ckpt

import (
	"fmt"

	gerrors "gvisor.dev/gvisor/pkg/errors"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
)

// sinkError turns a failed write of an image into an error carrying one of the errnos docs/abi.md
// lists for "writing the image failed": ENOSPC, EIO, EPIPE, EINTR (plus EAGAIN for a non-blocking
// file that is full, and EFBIG). The file is the caller's choice, and a write into it can fail
// in ways a freeze must not pass on raw: an unconnected datagram socket says EDESTADDRREQ, an
// unconnected stream socket ENOTCONN (the guest-side fuzzer found both, issue 13). A socket
// without a peer is EPIPE (nobody reads the image), a quota ENOSPC, anything else EIO. The
// original error stays in the message for the log.
func sinkError(err error) error {
	var e *gerrors.Error
	if ge, ok := sysErrno(errnoFreeze, err).(*gerrors.Error); ok {
		e = ge
	}
	mapped := linuxerr.EIO
	if e != nil {
		switch e.Errno() {
		case linuxerr.ENOSPC.Errno(), linuxerr.EIO.Errno(), linuxerr.EPIPE.Errno(), linuxerr.EINTR.Errno(),
			linuxerr.EAGAIN.Errno(), linuxerr.EFBIG.Errno(),
			// The syscall layer restarts or turns these into EINTR itself.
			linuxerr.ERESTARTSYS.Errno(), linuxerr.ERESTARTNOINTR.Errno(), linuxerr.ERESTARTNOHAND.Errno(),
			linuxerr.ERESTART_RESTARTBLOCK.Errno():
			return err
		case linuxerr.EDQUOT.Errno():
			mapped = linuxerr.ENOSPC
		case linuxerr.ENOTCONN.Errno(), linuxerr.EDESTADDRREQ.Errno(), linuxerr.ECONNRESET.Errno(),
			linuxerr.ECONNREFUSED.Errno(), linuxerr.ESHUTDOWN.Errno():
			mapped = linuxerr.EPIPE
		}
	}
	return fmt.Errorf("writing the image: %v: %w", err, mapped)
}
