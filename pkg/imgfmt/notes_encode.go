package imgfmt

// This file turns a Process into the descriptor bytes of the PT_NOTE segment, in the order
// docs/image-format.md fixes: NT_PRPSINFO; per thread NT_PRSTATUS, NT_PRFPREG, NT_X86_XSTATE;
// NT_AUXV; NT_FILE; NT_SIGINFO (after thread 0's notes instead in a core dump); then our own notes.
// Each note's encoder stands beside its decoder: notes_core.go (the standard notes),
// notes_process.go, notes_files.go and notes_memory.go (ours), obj_*.go (the object notes).

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
