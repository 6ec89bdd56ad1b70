package ckpt

import (
	"time"

	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/mm"
)

// The first copy-on-write snapshot (mm.Fork) of an address space is slow, the next ones are not:
// the first makes every writable private pma copy-on-write and removes write access to it from
// the process's platform address space (on systrap a munmap that the process's stub performs), a
// later fork finds the pmas already copy-on-write and does neither. A tree freeze used to pay that
// first fork for each process while the whole tree stood still (tens to hundreds of milliseconds
// a process on 2 cores), so it now takes a throw-away snapshot of each process's address space
// before it stops anything (preSnapshotTree): the processes run on meanwhile, and the snapshots
// of the freeze that follows find the work done.
//
// What it costs the running program: a write to a private page after the pre-snapshot faults
// once per pma. gVisor then holds the only reference to the page's memory and takes ownership of
// it without a copy (mm.isPMACopyOnWriteLocked); only a write during the microseconds between
// the fork and its release copies a page. Memory that is written again before the freeze is
// copy-on-write-marked by the freeze's own snapshot as before, at the old cost.
//
// With CKPT_TREE_KILL (the engines' `checkpoint` without --leave-running) the processes never run
// again after the freeze, so there is no pause to shorten: the freeze takes no pre-snapshots and
// pays for the first forks while everything is stopped, when the stopped processes leave the CPU
// to it, rather than beside them while they run.
//
// It changes nothing in the images: the freeze's snapshots are taken with every process stopped,
// exactly as before, and the throw-away ones are gone before it starts.

// preSnapshotTree takes and drops a copy-on-write snapshot of the address space of every live
// process of the tree rooted at root (selectTree's meaning), one address space at a time, from
// t's goroutine. Failures are not errors: the freeze then pays for the first snapshot itself.
//
// Preconditions: running on t's task goroutine.
func preSnapshotTree(t *kernel.Task, root int32) {
	start := time.Now()
	sel, err := selectTree(t, root)
	if err != nil {
		return // The freeze reports it.
	}
	// Only processes the caller may freeze: the freeze checks each member again once stopped
	// and fails with EPERM, but a caller that may not trace a process must not make it pay a
	// snapshot's copy-on-write faults, nor start stub processes for it, before that.
	var mayFreeze []*kernel.ThreadGroup
	for tg, pid := range sel {
		if checkTreeMember(t, &treeMember{tg: tg, pid: pid}) == nil {
			mayFreeze = append(mayFreeze, tg)
		} else {
			t.Debugf("ckpt: tree freeze: no pre-snapshot of pid %d (the caller may not freeze it)", pid)
		}
	}
	// One spare address space per process for the pre-snapshots and then the freeze's own
	// snapshots (snapshot_warm.go); the task blocks while they are made.
	t.UninterruptibleSleepStart()
	warmSnapshot(t.Kernel(), len(mayFreeze))
	t.UninterruptibleSleepFinish()
	warmed := time.Since(start)
	seen := make(map[*mm.MemoryManager]bool)
	n := 0
	for _, tg := range mayFreeze {
		if t.Killed() {
			return
		}
		m := heldMemoryManager(tg)
		if m == nil {
			continue
		}
		if seen[m] {
			m.DecUsers(t)
			continue
		}
		seen[m] = true
		began := time.Now()
		snap, err := m.Fork(t)
		forked := time.Now()
		if err == nil {
			snap.DecUsers(t)
			n++
		}
		m.DecUsers(t)
		t.Debugf("ckpt: tree freeze: pre-snapshot of pid %d: fork %v, release %v, err %v", sel[tg], forked.Sub(began), time.Since(forked), err)
	}
	t.Debugf("ckpt: tree freeze: pre-snapshots of %d address spaces in %v (%v of it warming the platform's pool)", n, time.Since(start), warmed)
}

// heldMemoryManager returns the address space of tg's first live thread with a user reference
// the caller must drop (DecUsers), or nil if it has none (exiting).
func heldMemoryManager(tg *kernel.ThreadGroup) *mm.MemoryManager {
	var out *mm.MemoryManager
	for _, o := range liveThreads(tg) {
		o.WithMuLocked(func(tt *kernel.Task) {
			if m := tt.MemoryManager(); m != nil && m.IncUsers() {
				out = m
			}
		})
		if out != nil {
			break
		}
	}
	return out
}
