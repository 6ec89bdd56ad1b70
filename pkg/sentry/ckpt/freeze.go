package ckpt

import (
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// freeze writes the image of req.target's process to req.file, or to the policy's ckpt-file when
// req.file is nil. The process keeps running afterwards.
//
// When the target is another process (our extension of DragonFly's semantics), the target freezes
// itself on its own task goroutine, at its next return to user mode, and the caller waits
// interruptibly for it.
//
// Preconditions: running on t's task goroutine; req was validated by newFreezeRequest.
func freeze(t *kernel.Task, req freezeRequest) error {
	if !req.self {
		return freezeOther(t, req)
	}
	var err error
	if req.file != nil {
		err = freezeToFile(t, req.file, captureRequest{at: inCheckpointSyscall, image: req.file})
	} else {
		err = freezeToPolicyFile(t, req.policy, captureRequest{at: inCheckpointSyscall})
	}
	return syscallError(t, err)
}

// freezeToFile captures t's process and encodes it into file at its current offset.
//
// Preconditions: running on t's task goroutine; file is open for writing.
//
// A failed freeze leaves no partial image: on a regular file the bytes written so far are cut off
// again (the file is truncated back to the starting offset, if it had grown past it) and the offset
// is restored. On a pipe or socket what was sent cannot be taken back.
func freezeToFile(t *kernel.Task, file *vfs.FileDescription, req captureRequest) error {
	sink := newFileSink(t, file)
	return sink.undoIfFailed(writeImage(t, sink, req))
}

// writeImage captures t's process and encodes it into sink on t's goroutine. The other threads are
// stopped for the capture; they stay stopped while the memory is written, unless a copy-on-write
// snapshot of the address space lets them run on (capturePending with snapSiblings).
func writeImage(t *kernel.Task, sink *fileSink, req captureRequest) error {
	if t.ThreadGroup().Count() > 1 {
		// The siblings run on after the snapshot: give it a ready address space.
		warmSnapshot(t.Kernel(), 1)
	}
	pi, err := capturePending(t, req, snapSiblings)
	if err != nil {
		return err
	}
	return pi.write(t, sink)
}

// syscallError logs a freeze error with its full context and turns it into the errno the caller
// sees (sysErrno, errno.go).
func syscallError(t *kernel.Task, err error) error {
	if err == nil {
		return nil
	}
	t.Infof("ckpt: freeze of pid %d failed: %v", t.ThreadGroup().ID(), err)
	return sysErrno(errnoFreeze, err)
}
