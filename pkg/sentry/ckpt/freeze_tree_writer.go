package ckpt

import (
	"fmt"
	"time"

	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
	"gvisor.dev/gvisor/pkg/usermem"
	"gvisor.dev/gvisor/pkg/waiter"
)

// treeWriter writes the tree stream into the caller's file. Unlike the single-process fileSink it
// waits for a full pipe or socket without being interrupted by signals (only a kill ends the wait):
// a whole-container checkpoint should not fail because the caller's runtime got a SIGURG or a
// SIGCHLD while its reader was slow. As for fileSink, a write into a pipe whose reader left fails
// with EPIPE and sends the caller no SIGPIPE, and every write error is one of docs/abi.md's
// (sinkError): the guest-side fuzzer found a tree freeze into an unconnected socket failing with
// EDESTADDRREQ.
type treeWriter struct {
	t *kernel.Task
	f *vfs.FileDescription
	// written counts the bytes written.
	written int64
}

// treeWritePoll bounds one wait for the file to become writable.
const treeWritePoll = 50 * time.Millisecond

// Write implements io.Writer.
func (w *treeWriter) Write(b []byte) (int, error) {
	src := usermem.BytesIOSequence(b)
	total := 0
	for total < len(b) {
		n, err := w.f.Write(noSIGPIPE{w.t}, src.DropFirst(total), vfs.WriteOptions{})
		total += int(n)
		w.written += n
		if err == nil {
			if n == 0 {
				return total, fmt.Errorf("writing the tree stream: no progress: %w", linuxerr.EIO)
			}
			continue
		}
		if !linuxerr.Equals(linuxerr.ErrWouldBlock, err) {
			return total, fmt.Errorf("writing the tree stream: %w", sinkError(err))
		}
		if err := w.waitWritable(); err != nil {
			return total, err
		}
	}
	return total, nil
}

// waitWritable waits until the file is writable, or at most treeWritePoll.
func (w *treeWriter) waitWritable() error {
	e, ch := waiter.NewChannelEntry(waiter.WritableEvents)
	if err := w.f.EventRegister(&e); err != nil {
		return err
	}
	defer w.f.EventUnregister(&e)
	if w.f.Readiness(waiter.WritableEvents)&waiter.WritableEvents != 0 {
		return nil
	}
	w.t.UninterruptibleSleepStart()
	select {
	case <-ch:
	case <-time.After(treeWritePoll):
	}
	w.t.UninterruptibleSleepFinish()
	if w.t.Killed() {
		return fmt.Errorf("killed while writing the tree stream: %w", linuxerr.EINTR)
	}
	return nil
}
