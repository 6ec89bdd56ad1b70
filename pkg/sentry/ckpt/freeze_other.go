package ckpt

import (
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// Freezing another process is runsc-ckpt's extension of DragonFly's sys_checkpoint, which only
// accepts -1 or the caller's own pid: the caller must be allowed to ptrace the target. The target
// captures itself on its own task goroutine (only there can its FP state be read on systrap) and
// takes a copy-on-write snapshot of its memory; then every thread of the target runs on, and the
// caller writes the image from the snapshot on its own goroutine. When no snapshot can be taken,
// the target stays stopped until the caller has written the image.

// remoteFreeze is the task work that makes another process capture itself on behalf of a caller
// blocked in sys_checkpoint.
type remoteFreeze struct {
	captured chan struct{} // Closed when the capture has finished (or was skipped).
	written  chan struct{} // Closed by the caller when it no longer reads the process.

	mu sync.Mutex
	// cancelled is set when the caller stopped waiting before the work started; the work then
	// does nothing. Protected by mu.
	// +checklocks:mu
	cancelled bool
	// started is set when the work begins the capture; from then on the caller waits for it.
	// Protected by mu.
	// +checklocks:mu
	started bool
	// abandoned is set when the caller was killed while the capture ran: the work drops the
	// image itself. Protected by mu.
	// +checklocks:mu
	abandoned bool
	// pi and err are the capture's result, valid once captured is closed. Protected by mu.
	// +checklocks:mu
	pi *pendingImage
	// +checklocks:mu
	err error
}

// TaskWork implements kernel.TaskWorker.
//
// Preconditions: running on t's task goroutine at a return to user mode.
func (w *remoteFreeze) TaskWork(t *kernel.Task) {
	w.mu.Lock()
	w.started = !w.cancelled
	start := w.started
	w.mu.Unlock()
	if !start {
		close(w.captured)
		return
	}
	pi, err := capturePending(t, captureRequest{at: atUserBoundary}, snapBackground)
	w.mu.Lock()
	abandoned := w.abandoned
	if !abandoned {
		w.pi, w.err = pi, err
	}
	w.mu.Unlock()
	close(w.captured)
	if pi == nil {
		return
	}
	if abandoned {
		pi.abandon(t)
		return
	}
	if pi.background() {
		return
	}
	// No snapshot: this thread, like its siblings, stays stopped while the caller reads the
	// live memory (the caller holds the address space, so a kill here cannot cut the image).
	for {
		t.UninterruptibleSleepStart()
		select {
		case <-w.written:
		case <-time.After(remotePoll):
		}
		t.UninterruptibleSleepFinish()
		if w.isWritten() || t.Killed() {
			return
		}
	}
}

// remotePoll is how often a caller waiting for another process's capture checks that it still
// lives, and how often a target waiting for its image to be written checks whether it is killed.
const remotePoll = 10 * time.Millisecond

// freezeOther makes req.target's process capture itself and writes its image into req.file.
//
// The wait is interruptible until the target starts its capture: a signal then cancels the request
// and the call restarts (ERESTARTSYS; EINTR if the handler has no SA_RESTART). Once the target has
// started, the caller waits for the capture (killable only), so a file never receives two images
// from one call. A failed write into a regular file leaves no partial image (freezeToFile).
//
// Errors: EBADF without a file (only pid -1 names the ckpt-file), ESRCH if the target exits before
// it freezes, EAGAIN if too many images are being written in the background, otherwise the
// capture's or the write's error.
//
// Preconditions: running on t's task goroutine.
func freezeOther(t *kernel.Task, req freezeRequest) error {
	pi, w, err := captureOther(t, req)
	if err != nil {
		return err
	}
	defer close(w.written)
	sink := newFileSink(t, req.file)
	return syscallError(t, sink.undoIfFailed(pi.write(t, sink)))
}

// captureOther makes req.target's process capture itself (snapshot included, see freezeOther) and
// returns the result. The caller must close w.written once it no longer reads the process (the
// target stays stopped until then when there is no snapshot). Errors are errnos.
//
// Preconditions: running on t's task goroutine.
func captureOther(t *kernel.Task, req freezeRequest) (*pendingImage, *remoteFreeze, error) {
	if req.file == nil {
		return nil, nil, linuxerr.EBADF
	}
	target := liveThread(req.target)
	if target == nil {
		return nil, nil, linuxerr.ESRCH
	}
	w := &remoteFreeze{captured: make(chan struct{}), written: make(chan struct{})}
	fail := func(err error) (*pendingImage, *remoteFreeze, error) {
		close(w.written)
		return nil, nil, err
	}
	warmSnapshot(t.Kernel(), 1)
	target.RegisterWork(w)
	target.BeginExternalStop()
	target.EndExternalStop()
	for {
		_, err := t.BlockWithTimeout(w.captured, true, remotePoll)
		if err == nil {
			break
		}
		if linuxerr.Equals(linuxerr.ETIMEDOUT, err) {
			if target.ExitState() != kernel.TaskExitNone && !w.isStarted() {
				w.cancel()
				return fail(linuxerr.ESRCH)
			}
			// A target in a group stop never runs w: captured from here (freeze_other_stopped.go).
			if pi, done, err := captureStoppedOther(t, target, w); done {
				if err != nil {
					return fail(syscallError(t, err))
				}
				return pi, w, nil
			}
			continue
		}
		// Interrupted.
		if w.cancel() {
			return fail(linuxerr.ERESTARTSYS)
		}
		for !w.isCaptured() {
			if !sleepUnlessKilled(t, time.Millisecond) {
				w.abandon(t)
				return fail(linuxerr.EINTR)
			}
		}
		break
	}
	w.mu.Lock()
	pi, err := w.pi, w.err
	w.mu.Unlock()
	if err != nil {
		return fail(syscallError(t, err))
	}
	if pi == nil {
		return fail(linuxerr.ESRCH) // Cancelled by the target's exit.
	}
	return pi, w, nil
}

// abandon is called by a caller killed while the capture runs: the image is dropped, by the caller
// if the capture is over, by the work otherwise.
func (w *remoteFreeze) abandon(t *kernel.Task) {
	w.mu.Lock()
	w.abandoned = true
	pi := w.pi
	w.pi = nil
	w.mu.Unlock()
	if pi != nil {
		pi.abandon(t)
	}
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

// isWritten reports whether the caller has finished with the image.
func (w *remoteFreeze) isWritten() bool {
	select {
	case <-w.written:
		return true
	default:
		return false
	}
}

// isStarted reports whether the target has begun the freeze.
func (w *remoteFreeze) isStarted() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.started
}

// isCaptured reports whether the capture has finished.
func (w *remoteFreeze) isCaptured() bool {
	select {
	case <-w.captured:
		return true
	default:
		return false
	}
}
