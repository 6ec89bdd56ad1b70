package ckpt

import (
	"fmt"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/sentry/arch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/memmap"
	"gvisor.dev/gvisor/pkg/sentry/mm"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
	"gvisor.dev/gvisor/pkg/usermem"
)

// Names of special VMAs (as /proc/pid/maps shows them), besides freeze_capture_mem.go's.
const (
	vmaHeap = "[heap]"
	// vmaThawScratch names the scratch memory that holds the signal frames of a thaw's extra
	// threads. It stays mapped until the last of them has read its frame (thaw_scratch.go); if
	// one never does (killed first), a later freeze may capture it, and a thaw skips it.
	vmaThawScratch = "[anon:runsc-ckpt-thaw]"
)

// checkAddressSpace refuses an image whose mappings this platform cannot hold (ptrace places
// mappings above systrap's MaxUserAddress) or that collide with systrap's [usertrap] table, which
// must stay where it is.
func checkAddressSpace(t *kernel.Task, p *imgfmt.Process) error {
	min, max := uint64(t.Kernel().MinUserAddress()), uint64(t.Kernel().MaxUserAddress())
	var usertrap []hostarch.AddrRange
	for _, v := range listVMAs(t) {
		if v.path == nameUsertrap {
			usertrap = append(usertrap, v.ar())
		}
	}
	for i := range p.Mappings {
		m := &p.Mappings[i]
		if m.Name == vmaThawScratch {
			continue
		}
		if m.Start < min || m.End > max || m.Start >= m.End {
			return invalidf("mapping %d [%#x, %#x) is outside this platform's user range [%#x, %#x)", i, m.Start, m.End, min, max)
		}
		ar := hostarch.AddrRange{Start: hostarch.Addr(m.Start), End: hostarch.Addr(m.End)}
		for _, u := range usertrap {
			if ar.Overlaps(u) {
				return invalidf("mapping %d [%#x, %#x) overlaps the platform's %s table", i, m.Start, m.End, nameUsertrap)
			}
		}
	}
	if p.VM.BrkStart > p.VM.BrkEnd || p.VM.BrkEnd > max {
		return invalidf("brk [%#x, %#x) is invalid here", p.VM.BrkStart, p.VM.BrkEnd)
	}
	return nil
}

// preparedMapping is a mapping's backing file, reopened and verified before commit.
type preparedMapping struct {
	// file is held for a MapReference mapping, and for a shared content mapping of a named file
	// that is mapped shared from the file again (thaw_mm_shared.go).
	file *vfs.FileDescription
}

func (pm *preparedMapping) release(t *kernel.Task) {
	if pm.file != nil {
		pm.file.DecRef(t)
		pm.file = nil
	}
}

// prepareMappings reopens the file of every mapping stored by reference and verifies it is the
// same, unchanged file (ESTALE otherwise: the image holds none of those bytes).
func prepareMappings(t *kernel.Task, p *imgfmt.Process) ([]preparedMapping, error) {
	maps := make([]preparedMapping, len(p.Mappings))
	for i := range p.Mappings {
		m := &p.Mappings[i]
		if sharedFileMapping(m) {
			maps[i].file = reopenSharedFile(t, i, m) // nil: the image's copy, as before.
			continue
		}
		if m.Kind != imgfmt.MapReference {
			continue
		}
		f, err := reopenMappedFile(t, m, linux.O_RDONLY)
		if err != nil {
			for j := 0; j < i; j++ {
				maps[j].release(t)
			}
			return nil, fmt.Errorf("mapping %d [%#x, %#x): %w", i, m.Start, m.End, err)
		}
		maps[i].file = f
	}
	return maps, nil
}

// reopenMappedFile reopens the file of mapping m with flags, verified to be the same, unchanged
// file, and checks that its range can be mapped. A reference is held on the result.
func reopenMappedFile(t *kernel.Task, m *imgfmt.Mapping, flags uint32) (*vfs.FileDescription, error) {
	f, err := reopenVerified(t, m.File, flags, true /* content */)
	if err != nil {
		return nil, err
	}
	if err := checkMappable(t, f, m.FileOffset, m.End-m.Start); err != nil {
		f.DecRef(t)
		return nil, fmt.Errorf("the file cannot be mapped: %w", err)
	}
	return f, nil
}

// clearAddressSpace unmaps every VMA of t except the vvar/vDSO pair (moved, not recreated: the
// vDSO cannot be mapped anew through exported API) and systrap's [usertrap] table.
//
// Preconditions: running on t's task goroutine, t is the only user of its address space.
func clearAddressSpace(t *kernel.Task) error {
	m := t.MemoryManager()
	vdso := currentVDSO(m)
	for _, v := range listVMAs(t) {
		if v.path == nameUsertrap || v.ar().Overlaps(vdso) {
			continue
		}
		if err := m.MUnmap(t, v.start, uint64(v.ar().Length())); err != nil {
			return fmt.Errorf("munmap [%#x, %#x) %q: %w", v.start, v.end, v.path, err)
		}
	}
	return nil
}

// perms converts an image protection to gVisor's.
func perms(p imgfmt.Prot) hostarch.AccessType {
	return hostarch.AccessType{Read: p&imgfmt.ProtRead != 0, Write: p&imgfmt.ProtWrite != 0, Execute: p&imgfmt.ProtExec != 0}
}

// mapMemory establishes brk and every mapping of the image. Content mappings are mapped
// MAP_PRIVATE straight from the image file (lazy: pages load on first touch; a streamed image was
// copied into a memfd first, see thaw_image.go).
//
// Preconditions: running on t's task goroutine; clearAddressSpace and moveVDSO have run.
func (p *thawPlan) mapMemory(t *kernel.Task) error {
	m := t.MemoryManager()
	vm := &p.proc.VM
	// brk first: BrkSetup forgets the exec'd program's heap, Brk creates the "[heap]" VMA that the
	// image's heap mapping (if any) then replaces.
	m.BrkSetup(t, hostarch.Addr(vm.BrkStart))
	if vm.BrkEnd > vm.BrkStart {
		if _, err := m.Brk(t, hostarch.Addr(vm.BrkEnd)); err != nil {
			return fmt.Errorf("brk [%#x, %#x): %w", vm.BrkStart, vm.BrkEnd, err)
		}
	}
	for i := range p.proc.Mappings {
		mp := &p.proc.Mappings[i]
		if mp.Name == vmaThawScratch {
			continue
		}
		if err := p.mapOne(t, i); err != nil {
			return fmt.Errorf("mapping %d [%#x, %#x) %q: %w", i, mp.Start, mp.End, mp.Name, err)
		}
	}
	return nil
}

// mapOne maps p.proc.Mappings[i].
func (p *thawPlan) mapOne(t *kernel.Task, i int) error {
	mp := &p.proc.Mappings[i]
	opts := memmap.MMapOpts{
		Length:   mp.End - mp.Start,
		Addr:     hostarch.Addr(mp.Start),
		Fixed:    true,
		Unmap:    true,
		Private:  true, // MapObject mappings are made shared (mapObject), named files' shared mappings below.
		Perms:    perms(mp.Prot),
		MaxPerms: hostarch.AnyAccess,
		Stack:    mp.Name == nameStack,
	}
	if mp.Delta {
		return p.mapDelta(t, mp, opts) // thaw_incr.go
	}
	var file *vfs.FileDescription
	switch mp.Kind {
	case imgfmt.MapContent:
		if f := p.maps[i].file; f != nil { // A named file's shared mapping (thaw_mm_shared.go).
			file = f
			opts.Offset = mp.FileOffset
			opts.Private = false
		} else if !eagerContent(mp) {
			file = p.image.file
			opts.Offset = uint64(mp.DataOffset)
		}
	case imgfmt.MapReference:
		file = p.maps[i].file
		opts.Offset = mp.FileOffset
	case imgfmt.MapZero:
	case imgfmt.MapObject:
		return p.mapObject(t, mp, opts)
	default:
		return invalidf("unknown mapping kind %d", mp.Kind)
	}
	if file == nil {
		// Anonymous zero-filled memory. gVisor refuses GrowsDown for file mappings, so only these
		// keep it.
		opts.GrowsDown = mp.GrowsDown
		opts.NameMut = memmap.NameMutAnon
		opts.Name = mp.Name
	} else {
		// The original label ("[heap]", "[stack]", a path) where there was one. An originally
		// anonymous mapping shows the image's path: a freeze must recognise such a mapping of an
		// image file and store it by content (docs/notes-thaw.md).
		opts.Name = mp.Name
		if err := file.ConfigureMMap(t, &opts); err != nil {
			return fmt.Errorf("configuring the file mapping: %w", err)
		}
	}
	_, err := t.MemoryManager().MMap(t, opts)
	if opts.MappingIdentity != nil {
		opts.MappingIdentity.DecRef(t)
	}
	if err != nil {
		return err
	}
	if mp.Kind == imgfmt.MapContent && file == nil {
		return p.copyContent(t, mp)
	}
	return nil
}

// eagerContent reports whether a content mapping is copied into anonymous memory at thaw instead
// of being mapped from the image: read-only memory that was anonymous at freeze. Mapped from the
// image it would show the image's path as its name and look like an unmodified read-only file
// mapping, which a later freeze would store by reference to an image that may be deleted by then.
// Such memory is rare and small (e.g. pages mprotect'ed read-only after being filled).
func eagerContent(mp *imgfmt.Mapping) bool {
	return mp.Name == "" && mp.Prot&imgfmt.ProtWrite == 0
}

// copyContent copies a content mapping's bytes from the image into its (anonymous) memory,
// skipping all-zero chunks.
func (p *thawPlan) copyContent(t *kernel.Task, mp *imgfmt.Mapping) error {
	const chunk = 1 << 20
	buf := make([]byte, min(chunk, mp.End-mp.Start))
	r := fileReaderAt{t: t, f: p.image.file}
	for off := uint64(0); off < mp.End-mp.Start; off += uint64(len(buf)) {
		b := buf[:min(uint64(len(buf)), mp.End-mp.Start-off)]
		if _, err := r.ReadAt(b, mp.DataOffset+int64(off)); err != nil {
			return fmt.Errorf("reading the image at %#x: %w", mp.DataOffset+int64(off), err)
		}
		if allZero(b) {
			continue
		}
		if _, err := t.MemoryManager().CopyOut(t, hostarch.Addr(mp.Start+off), b, usermem.IOOpts{IgnorePermissions: true}); err != nil {
			return fmt.Errorf("copying to %#x: %w", mp.Start+off, err)
		}
	}
	return nil
}

// restoreMetadata sets the address space's metadata and the process name: argv/env ranges, auxv
// (with the vDSO where it now is), the executable shown as /proc/self/exe, dumpability.
func (p *thawPlan) restoreMetadata(t *kernel.Task) {
	m := t.MemoryManager()
	vm := &p.proc.VM
	m.SetArgvStart(hostarch.Addr(vm.ArgvStart))
	m.SetArgvEnd(hostarch.Addr(vm.ArgvEnd))
	m.SetEnvvStart(hostarch.Addr(vm.EnvvStart))
	m.SetEnvvEnd(hostarch.Addr(vm.EnvvEnd))
	auxv := make(arch.Auxv, 0, len(p.proc.Auxv))
	for _, e := range p.proc.Auxv {
		v := hostarch.Addr(e.Value)
		if e.Key == linux.AT_SYSINFO_EHDR {
			v = hostarch.Addr(vm.VDSOBase)
		}
		auxv = append(auxv, arch.AuxEntry{Key: e.Key, Value: v})
	}
	m.SetAuxv(auxv)
	if p.exe != nil && p.exe.file != nil {
		m.SetExecutable(t, p.exe.file)
	} else {
		// Like DragonFly's textvp: the image stands in for an executable that cannot be reopened.
		m.SetExecutable(t, p.image.file)
	}
	m.SetDumpability(mm.UserDumpable)
	t.SetName(p.proc.Info.Name)
}
