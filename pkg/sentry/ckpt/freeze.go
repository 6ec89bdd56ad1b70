package ckpt

import (
	"errors"
	"sync"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/vfsfh"
	"golang.org/x/sys/unix"
	gerrors "gvisor.dev/gvisor/pkg/errors"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
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

// freezeToCkptFile writes the image of t's process to the ckpt-file named by the current policy
// (--ckpt-file, default "%N.ckpt", relative to the process's working directory), through a
// temporary file renamed into place so that a failed freeze leaves no partial image. info is the
// triggering signal (recorded as NT_SIGINFO), or nil. The process keeps running; the error is a
// Linux errno (linuxerr) suitable for logging or for a syscall return.
//
// It is the entry point for SIGCKPT/SIGCKPTEXIT.
//
// Preconditions: running on t's task goroutine from task work (kernel.TaskWorker), i.e. at a return
// to user mode and not inside a syscall handler: the thread's registers are recorded as they will
// be when it resumes user code, with an interrupted syscall set up to restart.
func freezeToCkptFile(t *kernel.Task, info *imgfmt.SigInfo) error {
	return syscallError(t, freezeToPolicyFile(t, CurrentPolicy(), captureRequest{at: atUserBoundary, sigInfo: info}))
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
	err := writeImage(t, sink, req)
	if err != nil && sink.mode == holeSeek {
		sink.undo()
	}
	return err
}

// writeImage captures t's process and encodes it into sink, holding the other threads stopped
// only while the image is written.
func writeImage(t *kernel.Task, sink *fileSink, req captureRequest) error {
	start := time.Now()
	p, stop, err := captureProcess(t, req)
	if err != nil {
		return err
	}
	captured := time.Since(start)
	err = imgfmt.Encode(sink, p)
	stop.resume()
	if err != nil {
		return err
	}
	t.Infof("ckpt: froze pid %d (%s): %d threads, %d mappings, %d fds, %d image bytes; capture %v, total pause %v",
		p.Info.PID, p.Info.Name, len(p.Threads), len(p.Mappings), len(p.Files), sink.written, captured, time.Since(start))
	return nil
}

// remoteFreeze is the task work that makes another process freeze itself into a file on behalf of
// a caller blocked in sys_checkpoint.
type remoteFreeze struct {
	file *vfs.FileDescription // The caller's image file; the work holds a reference.
	done chan struct{}        // Closed when the work has finished.

	mu sync.Mutex
	// cancelled is set when the caller stopped waiting; the work then does nothing. Protected by mu.
	cancelled bool
	// err is the freeze's result, valid once done is closed. Protected by mu.
	err error
}

// TaskWork implements kernel.TaskWorker.
//
// Preconditions: running on t's task goroutine at a return to user mode.
func (w *remoteFreeze) TaskWork(t *kernel.Task) {
	defer w.file.DecRef(t)
	w.mu.Lock()
	cancelled := w.cancelled
	w.mu.Unlock()
	var err error
	if !cancelled {
		err = freezeToFile(t, w.file, captureRequest{at: atUserBoundary})
	}
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
	close(w.done)
}

// remotePoll is how often a caller waiting for another process's freeze checks that it still lives.
const remotePoll = 10 * time.Millisecond

// freezeOther makes req.target's process freeze itself into req.file and waits for it.
//
// Errors: EBADF without a file (only pid -1 names the ckpt-file), ESRCH if the target exits before
// it freezes, EINTR if the caller is interrupted (the target then skips the freeze if it has not
// started it), otherwise the target's freeze error.
//
// Preconditions: running on t's task goroutine.
func freezeOther(t *kernel.Task, req freezeRequest) error {
	if req.file == nil {
		return linuxerr.EBADF
	}
	target := req.target
	req.file.IncRef()
	w := &remoteFreeze{file: req.file, done: make(chan struct{})}
	target.RegisterWork(w)
	target.BeginExternalStop()
	target.EndExternalStop()
	for {
		_, err := t.BlockWithTimeout(w.done, true, remotePoll)
		if err == nil {
			break
		}
		if !linuxerr.Equals(linuxerr.ETIMEDOUT, err) {
			w.mu.Lock()
			w.cancelled = true
			w.mu.Unlock()
			return linuxerr.EINTR
		}
		if target.ExitState() != kernel.TaskExitNone {
			w.mu.Lock()
			w.cancelled = true
			w.mu.Unlock()
			return linuxerr.ESRCH
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return syscallError(t, w.err)
}

// syscallError turns a freeze error into the errno the caller sees: the first gVisor or host
// errno in the chain (ENOSPC, EINTR, EINVAL for a refused address space, ...), ESTALE for a stale
// file handle, EIO for anything else. gVisor's syscall layer panics on errors that are not errnos,
// so every error leaving freeze goes through here. Errors are logged with their full context.
func syscallError(t *kernel.Task, err error) error {
	if err == nil {
		return nil
	}
	t.Infof("ckpt: freeze of pid %d failed: %v", t.ThreadGroup().ID(), err)
	var e *gerrors.Error
	if errors.As(err, &e) {
		return e
	}
	var en unix.Errno
	if errors.As(err, &en) {
		return linuxerr.ErrorFromUnix(en)
	}
	if errors.Is(err, vfsfh.ErrStale) {
		return linuxerr.ESTALE
	}
	return linuxerr.EIO
}
