package ckpt

import (
	"time"

	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// A freeze of another process (freeze_other.go) waits for the target to capture itself in task
// work, which a target in a group stop (SIGSTOP, job control) runs only once continued. When the
// target's every thread sits in a group stop, the caller captures it from its own goroutine
// instead, as a tree freeze does (freeze_tree_stopped.go): the target is held in its stop, its
// threads' full state pulled, the process captured, and then let go back to its group stop (at
// once with a copy-on-write snapshot, after the image is written without one). The single image
// does not record the stop (the ELF image has no place for it): a thaw runs the process. A tree
// checkpoint records it (docs/tree-format.md).

// captureStoppedOther captures target's process if every thread of it sits in a group stop,
// cancelling w, and reports whether it did (with the capture's error, if any). It reports false
// without error when the process is not in a group stop, another freeze of it runs, or w began. A
// target in a ptrace stop is waited for as before (until its tracer lets it run): its single
// image does not depend on the tracer.
//
// Errors: those of the capture.
//
// Preconditions: running on t's task goroutine (the freezing caller).
func captureStoppedOther(t, target *kernel.Task, w *remoteFreeze) (*pendingImage, bool, error) {
	tg := target.ThreadGroup()
	if !allStopped(tg) {
		return nil, false, nil
	}
	pid := int32(t.PIDNamespace().IDOfThreadGroup(tg))
	h, err := holdGroupStop(t, tg, pid, false)
	if h == nil || err != nil {
		return nil, err != nil, err // err: reading the stop signal failed.
	}
	if !w.cancel() {
		h.stop.resume() // Its work began after all: it captures itself.
		return nil, false, nil
	}
	pi := &pendingImage{start: time.Now()}
	p, err := captureHeld(h.self, h.threads)
	if err != nil {
		h.stop.resume()
		return nil, true, err
	}
	pi.p, pi.stop = p, h.stop
	pi.captured = time.Since(pi.start)
	if pi.slot, _ = acquireSlot(); pi.slot {
		pi.snap = forkSnapshot(h.self, p)
	}
	t.Infof("ckpt: pid %d is stopped (signal %d): captured from outside in %v", pid, h.sig, pi.captured)
	if pi.snap == nil {
		pi.releaseSlot()
		// Read from the live address space, held as capturePending holds it.
		if m := h.self.MemoryManager(); m.IncUsers() {
			pi.live = m
		}
		return pi, true, nil
	}
	h.stop.resume()
	pi.detached = true
	pi.paused = time.Since(pi.start)
	return pi, true, nil
}
