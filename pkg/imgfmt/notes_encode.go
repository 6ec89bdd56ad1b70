package imgfmt

// This file turns a Process into the descriptor bytes of the PT_NOTE segment, in the order
// docs/image-format.md fixes: NT_PRPSINFO; per thread NT_PRSTATUS, NT_PRFPREG, NT_X86_XSTATE;
// NT_AUXV; NT_FILE; NT_SIGINFO (after thread 0's notes instead in a core dump); then our own notes.

// appendNote appends one ELF note: namesz, descsz, type, the NUL-terminated owner padded to 4 bytes,
// the descriptor padded to 4 bytes.
func appendNote(w *wbuf, owner string, typ uint32, desc []byte) {
	w.u32(uint32(len(owner) + 1))
	w.u32(uint32(len(desc)))
	w.u32(typ)
	w.bytes([]byte(owner))
	w.zeros(pad4(len(owner)+1) - len(owner))
	w.bytes(desc)
	w.zeros(pad4(len(desc)) - len(desc))
}

// pad4 rounds n up to a multiple of 4.
func pad4(n int) int { return (n + 3) &^ 3 }

// encodeNotes returns the PT_NOTE segment's bytes. p must be valid.
func encodeNotes(p *Process) []byte {
	w := &wbuf{}
	d := &wbuf{}
	note := func(owner string, typ uint32) {
		appendNote(w, owner, typ, d.b)
		d.b = d.b[:0]
	}

	encodePrpsinfo(d, p)
	note(ownerCore, ntPrpsinfo)
	for i := range p.Threads {
		t := &p.Threads[i]
		encodePrstatus(d, p, i)
		note(ownerCore, ntPrstatus)
		if len(t.FPRegs) != 0 {
			d.bytes(t.FPRegs)
			note(ownerCore, ntPrfpreg)
		}
		if len(t.XState) != 0 {
			d.bytes(t.XState)
			note(ownerLinux, ntX86XState)
		}
		if i == 0 && p.CoreDump {
			encodeSiginfo(d, p.SigInfo)
			note(ownerCore, ntSiginfo)
		}
	}
	for _, a := range p.Auxv {
		d.u64(a.Key)
		d.u64(a.Value)
	}
	d.u64(0) // AT_NULL
	d.u64(0)
	note(ownerCore, ntAuxv)
	encodeNTFile(d, p)
	note(ownerCore, ntFile)
	if si := p.SigInfo; si != nil && !p.CoreDump {
		encodeSiginfo(d, si)
		note(ownerCore, ntSiginfo)
	}

	encodeVersion(d, p)
	note(OwnerRunscCkpt, NoteVersion)
	encodeProcess(d, p)
	note(OwnerRunscCkpt, NoteProcess)
	for i := range p.Threads {
		encodeThread(d, &p.Threads[i])
		note(OwnerRunscCkpt, NoteThread)
	}
	encodeSignals(d, &p.Signals)
	note(OwnerRunscCkpt, NoteSignals)
	for i := range p.Files {
		encodeFD(d, &p.Files[i])
		note(OwnerRunscCkpt, NoteFD)
	}
	encodeVM(d, &p.VM)
	note(OwnerRunscCkpt, NoteVM)
	for i := range p.Mappings {
		encodeMapping(d, &p.Mappings[i])
		note(OwnerRunscCkpt, NoteMapping)
	}
	if p.Cwd != nil {
		encodeCwd(d, p.Cwd)
		note(OwnerRunscCkpt, NoteCwd)
	}
	for i := range p.Objects {
		encodeObject(d, &p.Objects[i])
		note(OwnerRunscCkpt, NoteObject)
	}
	encodeIncremental(d, note, p)
	return w.b
}

// encodeSiginfo writes the NT_SIGINFO descriptor (siginfo_t, 128 bytes).
func encodeSiginfo(d *wbuf, si *SigInfo) {
	d.i32(si.Signo)
	d.i32(si.Errno)
	d.i32(si.Code)
	d.u32(0)
	if HasAddr(si.Signo, si.Code) {
		d.u64(si.Addr)
	} else {
		d.i32(si.PID)
		d.u32(si.UID)
	}
	d.zeros(siginfoSize - 24)
}

// encodePrpsinfo writes struct elf_prpsinfo (136 bytes).
func encodePrpsinfo(d *wbuf, p *Process) {
	d.u8(0)   // pr_state: running
	d.u8('R') // pr_sname
	d.u8(0)   // pr_zomb
	d.u8(0)   // pr_nice
	d.zeros(4)
	d.u64(0) // pr_flag
	d.u32(p.Creds.UID)
	d.u32(p.Creds.GID)
	d.i32(p.Info.PID)
	d.i32(p.Info.PPID)
	d.i32(p.Info.PGID)
	d.i32(p.Info.SID)
	d.fixedString(p.Info.Name, 16)
	d.fixedString(p.Info.Args, 80)
}

// encodePrstatus writes struct elf_prstatus (336 bytes) for thread i.
func encodePrstatus(d *wbuf, p *Process, i int) {
	t := &p.Threads[i]
	var sig int32
	if p.SigInfo != nil && (i == 0 || p.CoreDump) {
		sig = p.SigInfo.Signo
	}
	d.i32(sig) // pr_info.si_signo
	d.i32(0)   // pr_info.si_code
	d.i32(0)   // pr_info.si_errno
	d.u16(uint16(sig))
	d.zeros(2)
	d.u64(t.SigPending)
	d.u64(t.SigMask)
	d.i32(t.TID)
	d.i32(p.Info.PPID)
	d.i32(p.Info.PGID)
	d.i32(p.Info.SID)
	d.zeros(64) // pr_utime, pr_stime, pr_cutime, pr_cstime
	for _, r := range regsSlice(&t.Regs) {
		d.u64(r)
	}
	if len(t.FPRegs) != 0 {
		d.i32(1)
	} else {
		d.i32(0)
	}
	d.zeros(4)
}

// regsSlice returns the registers in user_regs_struct order.
func regsSlice(r *Regs) [numGeneralRegs]uint64 {
	return [numGeneralRegs]uint64{
		r.R15, r.R14, r.R13, r.R12, r.Rbp, r.Rbx, r.R11, r.R10, r.R9, r.R8,
		r.Rax, r.Rcx, r.Rdx, r.Rsi, r.Rdi, r.OrigRax, r.Rip, r.Cs,
		r.Eflags, r.Rsp, r.Ss, r.FsBase, r.GsBase, r.Ds, r.Es, r.Fs, r.Gs,
	}
}

// regsFromSlice is the inverse of regsSlice.
func regsFromSlice(v [numGeneralRegs]uint64) Regs {
	return Regs{
		R15: v[0], R14: v[1], R13: v[2], R12: v[3], Rbp: v[4], Rbx: v[5], R11: v[6], R10: v[7], R9: v[8], R8: v[9],
		Rax: v[10], Rcx: v[11], Rdx: v[12], Rsi: v[13], Rdi: v[14], OrigRax: v[15], Rip: v[16], Cs: v[17],
		Eflags: v[18], Rsp: v[19], Ss: v[20], FsBase: v[21], GsBase: v[22], Ds: v[23], Es: v[24], Fs: v[25], Gs: v[26],
	}
}

// encodeNTFile writes the NT_FILE descriptor: count, page size, (start, end, offset in pages) per
// file-backed mapping, then their NUL-terminated paths.
func encodeNTFile(d *wbuf, p *Process) {
	n := 0
	for i := range p.Mappings {
		if p.Mappings[i].File != nil {
			n++
		}
	}
	d.u64(uint64(n))
	d.u64(PageSize)
	for i := range p.Mappings {
		if m := &p.Mappings[i]; m.File != nil {
			d.u64(m.Start)
			d.u64(m.End)
			d.u64(m.FileOffset / PageSize)
		}
	}
	for i := range p.Mappings {
		if m := &p.Mappings[i]; m.File != nil {
			d.bytes([]byte(m.File.Path))
			d.u8(0)
		}
	}
}

func encodeVersion(d *wbuf, p *Process) {
	d.u32(noteLayoutVersion)
	d.u32(FormatMajor)
	d.u32(imageMinor(p))
	var flags uint32
	if p.CoreDump {
		flags |= versionFlagCoreDump
	}
	d.u32(flags)
	d.u32(PageSize)
	d.u32(uint32(len(p.Threads)))
	d.u32(uint32(len(p.Mappings)))
	d.u32(uint32(len(p.Files)))
	d.i64(p.Info.FreezeTimeNano)
	d.str(p.Info.Platform)
}

func encodeProcess(d *wbuf, p *Process) {
	c := &p.Creds
	d.u32(noteLayoutVersion)
	d.i32(p.Info.PID)
	d.i32(p.Info.PPID)
	d.i32(p.Info.PGID)
	d.i32(p.Info.SID)
	for _, v := range []uint32{c.UID, c.EUID, c.SUID, c.FSUID, c.GID, c.EGID, c.SGID, c.FSGID} {
		d.u32(v)
	}
	d.u32(uint32(len(c.Groups)))
	for _, g := range c.Groups {
		d.u32(g)
	}
	d.str(p.Info.Name)
	d.str(p.Info.Args)
}

func encodeThread(d *wbuf, t *Thread) {
	d.u32(noteLayoutVersion)
	d.i32(t.TID)
	d.u64(t.SigMask)
	d.u64(t.SigPending)
	d.u64(t.AltStack.Addr)
	d.u64(t.AltStack.Size)
	d.i32(t.AltStack.Flags)
	d.u32(0)
	d.u64(t.ClearTID)
	d.u64(t.RobustList)
}

func encodeSignals(d *wbuf, s *Signals) {
	d.u32(noteLayoutVersion)
	d.i32(s.PdeathSig)
	d.u64(s.Pending)
	for _, a := range s.Actions {
		d.u64(a.Handler)
		d.u64(a.Flags)
		d.u64(a.Restorer)
		d.u64(a.Mask)
	}
	for _, it := range s.Itimers {
		d.i64(it.IntervalNano)
		d.i64(it.ValueNano)
	}
}

// encodeHandle writes the 48-byte fixed part of a file handle (all zero for nil).
func encodeHandle(d *wbuf, h *FileHandle) {
	if h == nil {
		d.zeros(handleSize)
		return
	}
	d.u32(h.Mode)
	d.u32(h.DevMajor)
	d.u32(h.DevMinor)
	d.u32(0)
	d.u64(h.Ino)
	d.i64(h.Size)
	d.i64(h.MtimeNano)
	d.i64(h.CtimeNano)
}

func handlePath(h *FileHandle) string {
	if h == nil {
		return ""
	}
	return h.Path
}

func encodeFD(d *wbuf, f *File) {
	var flags uint32
	if f.IsImage {
		flags |= fdFlagIsImage
	}
	if f.Handle != nil {
		flags |= fdFlagHasHandle
	}
	d.u32(noteLayoutVersion)
	d.i32(f.FD)
	d.u32(f.FDFlags)
	d.u32(f.StatusFlags)
	d.i64(f.Offset)
	d.u32(uint32(f.Kind))
	d.u32(flags)
	encodeHandle(d, f.Handle)
	d.str(f.Desc)
	d.str(handlePath(f.Handle))
}

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

// encodeCwd writes the cwd note: layout, reserved, the directory's handle and its path.
func encodeCwd(d *wbuf, h *FileHandle) {
	d.u32(noteLayoutVersion)
	d.u32(0) // reserved
	encodeHandle(d, h)
	d.str(h.Path)
}
