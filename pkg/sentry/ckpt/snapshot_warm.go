package ckpt

import (
	"time"

	"gvisor.dev/gvisor/pkg/log"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// A copy-on-write snapshot is mm.MemoryManager.Fork, and Fork begins by asking the platform for a
// new address space, although a snapshot never runs: on systrap and ptrace that is a new stub
// process on the host, 3-8 ms, most of a freeze's pause (the rest of Fork took 0.6-1 ms for 16
// MiB to 1 GiB; docs/notes-pause.md, "What the pause is made of"). Both platforms keep released
// address spaces in a pool and hand them out again before making new ones. So a freezer creates
// and releases an address space before it stops anything (warmSnapshot): the snapshot taken
// with the threads stopped then gets one from the pool. It is only a head start: if something
// else (a guest fork) takes the pooled one first, the snapshot makes its own as before.

// warmSnapshot puts n platform address spaces into the platform's pool of released ones, for the
// snapshots of a freeze that is about to stop its processes. It is best effort: a failure to
// create one is logged and ignored (the snapshot then creates its own, or fails as before).
//
// It must not be called with kernel locks held: creating an address space starts a host process.
func warmSnapshot(k *kernel.Kernel, n int) {
	start := time.Now()
	made := 0
	for ; made < n; made++ {
		as, err := k.NewAddressSpace()
		if err != nil {
			log.Debugf("ckpt: no spare address space for a snapshot: %v", err)
			break
		}
		defer as.Release()
	}
	log.Debugf("ckpt: %d spare address spaces for snapshots in %v", made, time.Since(start))
}
