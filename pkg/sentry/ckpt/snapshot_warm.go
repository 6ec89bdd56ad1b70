package ckpt

import (
	"sync"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/log"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/platform"
)

// A copy-on-write snapshot is mm.MemoryManager.Fork, and Fork begins by asking the platform for a
// new address space, although a snapshot never runs: on systrap and ptrace that is a new stub
// process on the host, 3-8 ms on an idle machine and 25-40 ms on 2 loaded cores, most of a
// freeze's pause (the rest of Fork took 0.6-1 ms for 16 MiB to 1 GiB; docs/notes-pause.md, "What
// the pause is made of"). Both platforms keep released address spaces in a pool (systrap
// subprocessPool, ptrace globalPool) and hand them out again before making new ones. So a freezer
// fills the pool before it stops anything (warmSnapshot): the snapshots taken with the threads
// stopped then take address spaces from it. It is only a head start: if something else (a guest
// fork) takes a pooled one first, that snapshot makes its own as before. The address spaces stay
// in the pool afterwards, as the snapshots' own would have.

// warmWorkers bounds the address spaces created at once. A creation is mostly waiting for host
// threads (the new stub's, the sentry's ptrace and syscall round trips with it) to be scheduled
// beside the running processes, not CPU work: more at once get a larger share of the host (16 × 1
// MiB bench container, load ~11: 231-440 ms with 8 against 388-984 ms with 2).
const warmWorkers = 8

// warmSnapshot makes sure the platform's pool holds n unused address spaces, for the snapshots of
// a freeze that is about to stop its processes. Taking n and releasing them only once all are
// made leaves n in the pool (releasing each at once would hand the same one back every time). It
// is best effort: a failure to create one is logged and ignored (the snapshot then creates its
// own, or fails as before).
//
// It must not be called with kernel locks held: creating an address space starts a host process.
func warmSnapshot(k *kernel.Kernel, n int) {
	start := time.Now()
	spaces := make(chan platform.AddressSpace, n)
	var wg sync.WaitGroup
	var next atomic.Int32
	for w := 0; w < min(n, warmWorkers); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for int(next.Add(1)) <= n {
				as, err := k.NewAddressSpace()
				if err != nil {
					log.Debugf("ckpt: no spare address space for a snapshot: %v", err)
					return
				}
				spaces <- as
			}
		}()
	}
	wg.Wait()
	close(spaces)
	made := len(spaces)
	for as := range spaces {
		as.Release()
	}
	log.Debugf("ckpt: %d of %d spare address spaces for snapshots in %v", made, n, time.Since(start))
}
