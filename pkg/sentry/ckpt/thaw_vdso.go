package ckpt

import (
	"bytes"
	"fmt"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/loader/vdsodata"
	"gvisor.dev/gvisor/pkg/sentry/memmap"
	"gvisor.dev/gvisor/pkg/sentry/mm"
	"gvisor.dev/gvisor/pkg/usermem"
)

// The vDSO cannot be mapped anew through gVisor's exported API (and a new parameter page would not
// be updated by the timekeeper), so thaw moves the thawing process's own [vvar]+vDSO to the address
// the image recorded: libc caches pointers into the vDSO, so it must be exactly there, and it must
// be the same vDSO build (docs/design.md, "The vDSO").

// checkVDSO refuses an image from a different vDSO build, or one whose vvar/vDSO place is taken by
// its own mappings or lies outside this platform's user range.
func checkVDSO(t *kernel.Task, p *imgfmt.Process) error {
	vm := &p.VM
	if vm.VDSOHash != vdsoHash() {
		return invalidf("the image was frozen with a different vDSO (sha256 %x, this sentry's is %x)", vm.VDSOHash[:8], vdsoHash())
	}
	if vm.VDSOSize != vdsoSize() {
		return invalidf("vDSO size %#x, this sentry's is %#x", vm.VDSOSize, vdsoSize())
	}
	base := vm.VDSOBase
	if base%hostarch.PageSize != 0 || base < uint64(t.Kernel().MinUserAddress())+hostarch.PageSize ||
		base+vm.VDSOSize > uint64(t.Kernel().MaxUserAddress()) || base+vm.VDSOSize < base {
		return invalidf("vDSO base %#x is not usable on this platform", base)
	}
	want := vdsoRange(base)
	for i := range p.Mappings {
		m := &p.Mappings[i]
		if m.Name == vmaThawScratch {
			continue // Not mapped by a thaw.
		}
		if want.Overlaps(hostarch.AddrRange{Start: hostarch.Addr(m.Start), End: hostarch.Addr(m.End)}) {
			return invalidf("mapping %d [%#x, %#x) overlaps the vvar/vDSO at %#x", i, m.Start, m.End, base)
		}
	}
	return nil
}

// moveVDSO moves t's [vvar] and vDSO VMAs so that the vDSO starts at want, then makes sure its bytes
// are the pristine vDSO (systrap patches syscall instructions in place, with return addresses that
// point into the old location).
//
// Preconditions: running on t's task goroutine; clearAddressSpace has run, so only vvar/vDSO and
// [usertrap] are mapped.
func moveVDSO(t *kernel.Task, want uint64) error {
	m := t.MemoryManager()
	curBase, ok := vdsoBase(m)
	if !ok {
		return fmt.Errorf("no AT_SYSINFO_EHDR in the auxv")
	}
	cur := vdsoRange(curBase)
	dst := vdsoRange(want)
	if curBase != want {
		if dst.Overlaps(cur) {
			// MRemap cannot move a VMA onto itself: hop through a free range first.
			hop, err := freeRange(t, uint64(cur.Length()), dst)
			if err != nil {
				return err
			}
			if err := moveRange(t, cur, hop); err != nil {
				return fmt.Errorf("hop to %#x: %w", hop, err)
			}
			cur = hostarch.AddrRange{Start: hop, End: hop + cur.Length()}
		}
		if err := moveRange(t, cur, dst.Start); err != nil {
			return err
		}
		m.SetVDSOSigReturn(want + (m.VDSOSigReturn() - curBase))
	}
	auxv := m.Auxv()
	for i := range auxv {
		if auxv[i].Key == linux.AT_SYSINFO_EHDR {
			auxv[i].Value = hostarch.Addr(want)
		}
	}
	m.SetAuxv(auxv)

	have := make([]byte, len(vdsodata.Binary))
	if _, err := m.CopyIn(t, hostarch.Addr(want), have, usermem.IOOpts{IgnorePermissions: true}); err != nil {
		return fmt.Errorf("reading the moved vDSO: %w", err)
	}
	if !bytes.Equal(have, vdsodata.Binary) {
		if _, err := m.CopyOut(t, hostarch.Addr(want), vdsodata.Binary, usermem.IOOpts{IgnorePermissions: true}); err != nil {
			return fmt.Errorf("rewriting the pristine vDSO: %w", err)
		}
	}
	return nil
}

// moveRange moves every VMA inside r (vvar first, in address order) so that r starts at to. The
// target must be free: MRemap with MustMove silently unmaps whatever is there.
func moveRange(t *kernel.Task, r hostarch.AddrRange, to hostarch.Addr) error {
	m := t.MemoryManager()
	for _, v := range listVMAs(t) {
		if !r.IsSupersetOf(v.ar()) {
			continue
		}
		n := uint64(v.ar().Length())
		nt := to + (v.start - r.Start)
		if _, err := m.MRemap(t, v.start, n, n, mm.MRemapOpts{Move: mm.MRemapMustMove, NewAddr: nt}); err != nil {
			return fmt.Errorf("mremap [%#x, %#x) %q to %#x: %w", v.start, v.end, v.path, nt, err)
		}
	}
	return nil
}

// freeRange returns the start of a free range of length n that does not overlap avoid, by letting
// the mm choose a place for a temporary anonymous mapping.
func freeRange(t *kernel.Task, n uint64, avoid hostarch.AddrRange) (hostarch.Addr, error) {
	m := t.MemoryManager()
	// Reserve avoid's length twice over so that the chosen range cannot be inside avoid.
	var held []hostarch.AddrRange
	defer func() {
		for _, h := range held {
			m.MUnmap(t, h.Start, uint64(h.Length()))
		}
	}()
	for try := 0; try < 4; try++ {
		a, err := m.MMap(t, memmap.MMapOpts{Length: n, Private: true, Perms: hostarch.NoAccess, MaxPerms: hostarch.NoAccess})
		if err != nil {
			return 0, fmt.Errorf("finding a free range: %w", err)
		}
		r := hostarch.AddrRange{Start: a, End: a + hostarch.Addr(n)}
		held = append(held, r)
		if !r.Overlaps(avoid) {
			return a, nil
		}
	}
	return 0, fmt.Errorf("no free range of %#x bytes outside [%#x, %#x)", n, avoid.Start, avoid.End)
}
