package ckpt

import (
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/mm"
)

// A process need not stay stopped while its image is written. Once everything but the memory bytes
// is captured, the freeze takes a copy-on-write snapshot of the address space with mm.Fork (what
// fork(2) does: private memory becomes copy-on-write, nothing is copied), points every mapping's
// reader at the snapshot and lets the threads run on; their writes from then on copy pages and do
// not reach the image. capturePending (freeze_pending.go) decides when to take one.
//
// The snapshot is not taken when it could differ from what the process had at the capture:
// shared mappings stored by content (fork shares them, so other threads' writes would show) and
// VMAs that fork does not copy (MADV_DONTFORK).

// forkSnapshot forks t's address space and redirects p's content readers to the fork. It returns
// the fork, which the caller must release with DecUsers once the image is written, or nil when no
// snapshot is taken (p is then unchanged).
//
// Preconditions: running on t's task goroutine; the other threads of the process are stopped and p
// was captured from t's address space.
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
