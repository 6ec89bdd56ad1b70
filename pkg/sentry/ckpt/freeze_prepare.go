package ckpt

import (
	"runtime"
	"runtime/metrics"

	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// prepareFreeze readies the sentry for a freeze of n processes that is about to stop them: spare
// address spaces for their snapshots (warmSnapshot) and, when a garbage collection is due soon
// (gcDueSoon), a collected Go heap, both before anything stops. The collection runs beside the
// address spaces' creation, which mostly waits for host processes.
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
	if !gcDueSoon(freezeHeapGrowth) {
		warmSnapshot(k, n)
		return
	}
	collectBeside(func() { warmSnapshot(k, n) })
}

// freezeHeapGrowth is about what a freeze adds to the sentry's heap between the release of the
// threads and the first chunks of its write: 2.7 MB in a trace of a 1 GiB, 2-thread process. A
// collection is forced before the freeze only when the heap is this close to its goal, that is
// when the freeze itself would likely start one. A full collection before every freeze would cost
// a sentry with a large heap (many processes, many files) a mark of all of it per checkpoint; the
// goal being twice the live heap, such a heap is rarely this close to it.
const freezeHeapGrowth = 4 << 20

// gcDueSoon reports whether the heap is within growth bytes of the goal at which the runtime
// completes its next collection (and starts it somewhat before). It reads runtime/metrics, which
// does not stop the world; if a metric is missing it says yes.
func gcDueSoon(growth uint64) bool {
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 {
		return true
	}
	return s[1].Value.Uint64()+growth >= s[0].Value.Uint64()
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
