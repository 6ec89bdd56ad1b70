package ckpt

import (
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/mm"
)

// A multi-threaded process need not stay stopped while its image is written. Once everything but
// the memory bytes is captured, the freeze takes a copy-on-write snapshot of the address space with
// mm.Fork (what fork(2) does: private memory becomes copy-on-write, nothing is copied), points every
// mapping's reader at the snapshot and lets the other threads run on; their writes from then on
// copy pages and do not reach the image. The freezing thread itself stays in the freeze until the
// image is written, so that errors (ENOSPC) are reported to it.
//
// The snapshot is not taken when it could differ from what the process had at the capture:
// shared mappings stored by content (fork shares them, so other threads' writes would show) and
// VMAs that fork does not copy (MADV_DONTFORK). A single-threaded process gains nothing from it:
// it is stopped anyway, and fork would make its memory copy-on-write for no reason.

// snapshotMemory forks t's address space and redirects p's content readers to the fork. It returns
// the fork, which the caller must release with DecUsers once the image is written, or nil when no
// snapshot is taken (p is then unchanged).
//
// Preconditions: running on t's task goroutine; the other threads of the process are stopped and p
// was captured from t's address space.
func snapshotMemory(t *kernel.Task, p *imgfmt.Process) *mm.MemoryManager {
	if len(p.Threads) < 2 {
		return nil
	}
	return forkSnapshot(t, p)
}

// forkSnapshot is snapshotMemory for any number of threads: a tree freeze snapshots
// single-threaded processes too, so that they can run on while the other images are written.
func forkSnapshot(t *kernel.Task, p *imgfmt.Process) *mm.MemoryManager {
	want := make(map[uint64]uint64)
	for i := range p.Mappings {
		m := &p.Mappings[i]
		if m.Kind != imgfmt.MapContent {
			continue
		}
		if m.Shared {
			return nil
		}
		if _, ok := m.Contents.(*memReader); !ok {
			return nil
		}
		want[m.Start] = m.End
	}
	snap, err := t.MemoryManager().Fork(t)
	if err != nil {
		t.Debugf("ckpt: no copy-on-write snapshot, the process stays stopped: %v", err)
		return nil
	}
	found := 0
	// Only collect in the callback: it runs under the snapshot's mappingMu.
	snap.ReadMapsDataInto(t, func(start, end hostarch.Addr, _ hostarch.AccessType, _ string, _ uint64, _, _ uint32, _ uint64, _ string) {
		if e, ok := want[uint64(start)]; ok && e == uint64(end) {
			found++
		}
	})
	if found != len(want) {
		t.Debugf("ckpt: the snapshot lacks %d mappings (MADV_DONTFORK?); the process stays stopped", len(want)-found)
		snap.DecUsers(t)
		return nil
	}
	for i := range p.Mappings {
		if r, ok := p.Mappings[i].Contents.(*memReader); ok {
			r.mm = snap
		}
	}
	return snap
}
