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

// writeImage captures t's process and encodes it into sink. The other threads are stopped for the
// capture; they stay stopped while the memory is written, unless a copy-on-write snapshot of the
// address space lets them run on (snapshotMemory).
func writeImage(t *kernel.Task, sink *fileSink, req captureRequest) error {
	start := time.Now()
	p, stop, err := captureProcess(t, req)
	if err != nil {
		return err
	}
	defer stop.resume()
	captured := time.Since(start)
	pause := "whole freeze"
	if snap := snapshotMemory(t, p); snap != nil {
		defer snap.DecUsers(t)
		stop.release()
		pause = time.Since(start).String()
	}
	if err := imgfmt.Encode(sink, p); err != nil {
		return err
	}
	t.Infof("ckpt: froze pid %d (%s): %d threads, %d mappings, %d fds, %d image bytes; capture %v, other threads paused %s, total %v",
		p.Info.PID, p.Info.Name, len(p.Threads), len(p.Mappings), len(p.Files), sink.written, captured, pause, time.Since(start))
	return nil
}

// remoteFreeze is the task work that makes another process freeze itself into a file on behalf of
// a caller blocked in sys_checkpoint.
type remoteFreeze struct {
	file *vfs.FileDescription // The caller's image file; the work holds a reference.
	done chan struct{}        // Closed when the work has finished (or skipped).

	mu sync.Mutex
	// cancelled is set when the caller stopped waiting before the work started; the work then
	// does nothing. Protected by mu.
	cancelled bool
	// started is set when the work begins the freeze; from then on the caller waits for it.
	// Protected by mu.
	started bool
	// err is the freeze's result, valid once done is closed. Protected by mu.
	err error
}

// TaskWork implements kernel.TaskWorker.
//
// Preconditions: running on t's task goroutine at a return to user mode.
func (w *remoteFreeze) TaskWork(t *kernel.Task) {
	defer close(w.done)
	defer w.file.DecRef(t)
	w.mu.Lock()
	w.started = !w.cancelled
	start := w.started
	w.mu.Unlock()
	if !start {
		return
	}
	err := freezeToFile(t, w.file, captureRequest{at: atUserBoundary})
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
}

// remotePoll is how often a caller waiting for another process's freeze checks that it still lives.
const remotePoll = 10 * time.Millisecond

// freezeOther makes req.target's process freeze itself into req.file and waits for it.
//
// The wait is interruptible until the target starts its freeze: a signal then cancels the request
// and the call restarts (ERESTARTSYS; EINTR if the handler has no SA_RESTART). Once the target has
// started, the caller waits for its result, so a file never receives two images from one call.
//
// Errors: EBADF without a file (only pid -1 names the ckpt-file), ESRCH if the target exits before
// it freezes, otherwise the target's freeze error.
//
// Preconditions: running on t's task goroutine.
func freezeOther(t *kernel.Task, req freezeRequest) error {
	if req.file == nil {
		return linuxerr.EBADF
	}
	target := liveThread(req.target)
	if target == nil {
		return linuxerr.ESRCH
	}
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
		if linuxerr.Equals(linuxerr.ETIMEDOUT, err) {
			if target.ExitState() != kernel.TaskExitNone && !w.isStarted() {
				w.cancel()
				return linuxerr.ESRCH
			}
			continue
		}
		// Interrupted.
		if w.cancel() {
			return linuxerr.ERESTARTSYS
		}
		for !w.isDone() {
			if !sleepUnlessKilled(t, time.Millisecond) {
				return linuxerr.EINTR
			}
		}
		break
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return syscallError(t, w.err)
}

// liveThread returns a thread of target's process that has not begun to exit (target itself if it
// qualifies; the leader of a process may have exited while other threads run on), or nil.
func liveThread(target *kernel.Task) *kernel.Task {
	if target.ExitState() == kernel.TaskExitNone {
		return target
	}
	var live *kernel.Task
	target.ThreadGroup().ForEachTask(func(o *kernel.Task) bool {
		if o.ExitState() == kernel.TaskExitNone {
			live = o
			return false
		}
		return true
	})
	return live
}

// cancel cancels the work if it has not started and reports whether it did.
func (w *remoteFreeze) cancel() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.started {
		w.cancelled = true
	}
	return w.cancelled
}

// isStarted reports whether the target has begun the freeze.
func (w *remoteFreeze) isStarted() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.started
}

// isDone reports whether the work has finished.
func (w *remoteFreeze) isDone() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
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
