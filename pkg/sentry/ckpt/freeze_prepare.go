package ckpt

import (
	"runtime"

	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// prepareFreeze readies the sentry for a freeze of n processes that is about to stop them: spare
// address spaces for their snapshots (warmSnapshot) and a garbage-collected Go heap, both before
// anything stops. The collection runs beside the address spaces' creation, which mostly waits for
// host processes.
//
// Why collect now (a Go execution trace of the sentry during a SIGCKPT of a 1 GiB process,
// docs/notes-pause.md "Where the threads' stops go: the sentry's Go scheduler"): once the threads
// run again, each one's first store into its private memory copies 2 MiB in gVisor's fault handler
// (copy-on-write of the snapshot), one runtime.memmove of 3-12 ms at this VM's first-touch cost,
// which the Go runtime cannot preempt. A garbage collection that starts then — the image writer's
// allocations crossing the heap goal — stops the world until that copy ends: every goroutine,
// every task of the sandbox, waited 11 ms in the trace's "GC sweep termination". Collected just
// before, the heap starts the freeze far from its goal, and the write allocates little
// (viewBufs), so no collection is due while the threads make their first copies.
func prepareFreeze(k *kernel.Kernel, n int) {
	collectBeside(func() { warmSnapshot(k, n) })
}

// collectBeside runs a garbage collection on another goroutine while f runs, and returns once both
// are done.
func collectBeside(f func()) {
	collected := make(chan struct{})
	go func() {
		runtime.GC()
		close(collected)
	}()
	f()
	<-collected
}
