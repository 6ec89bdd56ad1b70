package ckpt

import (
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// Freezing another process is runsc-ckpt's extension of DragonFly's sys_checkpoint, which only
// accepts -1 or the caller's own pid: the caller must be allowed to ptrace the target, and the
// target freezes itself on its own task goroutine (only there can its FP state be read on systrap)
// while the caller waits.

// remoteFreeze is the task work that makes another process freeze itself into a file on behalf of
// a caller blocked in sys_checkpoint.
type remoteFreeze struct {
	file *vfs.FileDescription // The caller's image file; the work holds a reference.
	done chan struct{}        // Closed when the work has finished (or skipped).

	mu sync.Mutex
	// cancelled is set when the caller stopped waiting before the work started; the work then
	// does nothing. Protected by mu.
	// +checklocks:mu
	cancelled bool
	// started is set when the work begins the freeze; from then on the caller waits for it.
	// Protected by mu.
	// +checklocks:mu
	started bool
	// err is the freeze's result, valid once done is closed. Protected by mu.
	// +checklocks:mu
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
	err := w.err
	w.mu.Unlock()
	return syscallError(t, err)
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
