package imgfmt

import "fmt"

// runsc-ckpt's notes about memory, each encoder beside its decoder: the vm note and a mapping note
// per PT_LOAD segment (docs/image-format.md §4.2).

func encodeVM(d *wbuf, vm *VMInfo) {
	var flags uint32
	if vm.Exe != nil {
		flags |= vmFlagHasExe
	}
	d.u32(noteLayoutVersion)
	d.u32(flags)
	for _, v := range []uint64{vm.BrkStart, vm.BrkEnd, vm.ArgvStart, vm.ArgvEnd, vm.EnvvStart, vm.EnvvEnd, vm.VDSOBase, vm.VDSOSize} {
		d.u64(v)
	}
	d.bytes(vm.VDSOHash[:])
	encodeHandle(d, vm.Exe)
	d.str(handlePath(vm.Exe))
}

// decodeVMNote decodes our vm note (encodeVM).
func decodeVMNote(d *noteDecoder, n *rawNote, _ int) error {
	d.loc.vm = n.off
	r := n.reader("vm note")
	ownVersion(r)
	vmFlags := r.u32()
	if r.err == nil && vmFlags&^vmFlagHasExe != 0 {
		r.off -= 4
		r.fail("unknown flags %#x", vmFlags)
	}
	vm := &d.p.VM
	vm.BrkStart, vm.BrkEnd = r.u64(), r.u64()
	vm.ArgvStart, vm.ArgvEnd = r.u64(), r.u64()
	vm.EnvvStart, vm.EnvvEnd = r.u64(), r.u64()
	vm.VDSOBase, vm.VDSOSize = r.u64(), r.u64()
	copy(vm.VDSOHash[:], r.take(32))
	vm.Exe = decodeHandle(r, vmFlags&vmFlagHasExe != 0)
	decodeHandlePath(r, vm.Exe)
	return r.end()
}

func encodeMapping(d *wbuf, m *Mapping) {
	var flags uint32
	if m.Shared {
		flags |= mapFlagShared
	}
	if m.GrowsDown {
		flags |= mapFlagGrowsDown
	}
	if m.File != nil {
		flags |= mapFlagHasFile
	}
	if m.HeaderPage {
		flags |= mapFlagHeaderPage
	}
	if m.Delta {
		flags |= mapFlagDelta
	}
	d.u32(noteLayoutVersion)
	d.u32(uint32(m.Kind))
	d.u32(uint32(m.Prot))
	d.u32(flags)
	d.u64(m.Start)
	d.u64(m.End)
	d.u64(m.FileOffset)
	encodeHandle(d, m.File)
	d.str(m.Name)
	d.str(handlePath(m.File))
}

// decodeMappingNote decodes mapping note i (encodeMapping).
func decodeMappingNote(d *noteDecoder, n *rawNote, i int) error {
	d.loc.mappings = append(d.loc.mappings, n.off)
	r := n.reader(fmt.Sprintf("mapping note %d", i))
	ownVersion(r)
	var m Mapping
	m.Kind = MappingKind(r.u32())
	m.Prot = Prot(r.u32())
	flags := r.u32()
	if r.err == nil && flags&^(mapFlagShared|mapFlagGrowsDown|mapFlagHasFile|mapFlagHeaderPage|mapFlagDelta) != 0 {
		r.off -= 4
		r.fail("unknown flags %#x", flags)
	}
	m.Shared, m.GrowsDown = flags&mapFlagShared != 0, flags&mapFlagGrowsDown != 0
	m.HeaderPage = flags&mapFlagHeaderPage != 0
	if m.Delta = flags&mapFlagDelta != 0; m.Delta {
		d.deltas = append(d.deltas, i)
	}
	m.Start, m.End, m.FileOffset = r.u64(), r.u64(), r.u64()
	m.File = decodeHandle(r, flags&mapFlagHasFile != 0)
	m.Name = r.str("name", MaxPathLen)
	decodeHandlePath(r, m.File)
	if err := r.end(); err != nil {
		return err
	}
	d.p.Mappings = append(d.p.Mappings, m)
	return nil
}
