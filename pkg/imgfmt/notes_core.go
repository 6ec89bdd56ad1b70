package imgfmt

import (
	"bytes"
	"fmt"
)

// The standard core-file notes, each encoder beside its decoder: NT_PRPSINFO, NT_PRSTATUS (and the
// register layout), NT_AUXV, NT_FILE and NT_SIGINFO (docs/image-format.md §4.1). encodeNotes
// (notes_encode.go) writes them in segment order; noteSteps (notes_decode.go) reads them back.

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

// prpsinfoNote is what NT_PRPSINFO holds, kept to cross-check with the process note.
type prpsinfoNote struct {
	off                  int64
	uid, gid             uint32
	pid, ppid, pgid, sid int32
	name, args           string
}

// decodePrpsinfoNote decodes NT_PRPSINFO (encodePrpsinfo).
func decodePrpsinfoNote(d *noteDecoder, n *rawNote, _ int) error {
	if len(n.desc) != prpsinfoSize {
		return formatErrorf(n.off, "NT_PRPSINFO: descriptor is %d bytes, want %d", len(n.desc), prpsinfoSize)
	}
	r := n.reader("NT_PRPSINFO")
	if state, sname := r.u8(), r.u8(); r.err == nil && (state != 0 || sname != 'R') {
		r.fail("pr_state %d, pr_sname %q, want 0, 'R'", state, sname)
	}
	r.zero(14, "pr_zomb, pr_nice, padding and pr_flag")
	ps := &d.prpsinfo
	ps.off = n.off
	ps.uid, ps.gid = r.u32(), r.u32()
	ps.pid, ps.ppid, ps.pgid, ps.sid = r.i32(), r.i32(), r.i32(), r.i32()
	ps.name, ps.args = r.fixedString(16), r.fixedString(80)
	return r.end()
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

// prstatusInfo is what NT_PRSTATUS holds beyond registers, kept for cross-checks.
type prstatusInfo struct {
	off              int64
	cursig           uint16
	sigpend, sighold uint64
	ppid, pgrp, sid  int32
	fpvalid          int32
	hasFP            bool
}

// decodePrstatusNote decodes a thread's NT_PRSTATUS (encodePrstatus) and the notes that follow it:
// an optional NT_PRFPREG, an optional NT_X86_XSTATE and, after thread 0's, a core dump's NT_SIGINFO.
func decodePrstatusNote(d *noteDecoder, n *rawNote, _ int) error {
	p, it := d.p, d.it
	what := fmt.Sprintf("NT_PRSTATUS of thread %d", len(p.Threads))
	if len(n.desc) != prstatusSize {
		return formatErrorf(n.off, "%s: descriptor is %d bytes, want %d", what, len(n.desc), prstatusSize)
	}
	r := n.reader(what)
	var t Thread
	var ps prstatusInfo
	ps.off = n.off
	infoSigno := r.i32()
	r.zero(8, "pr_info.si_code and si_errno")
	ps.cursig = r.u16()
	r.zero(2, "padding")
	ps.sigpend, ps.sighold = r.u64(), r.u64()
	t.TID = r.i32()
	ps.ppid, ps.pgrp, ps.sid = r.i32(), r.i32(), r.i32()
	r.zero(64, "pr_utime, pr_stime, pr_cutime, pr_cstime")
	var regs [numGeneralRegs]uint64
	for i := range regs {
		regs[i] = r.u64()
	}
	t.Regs = regsFromSlice(regs)
	ps.fpvalid = r.i32()
	r.zero(4, "padding")
	if err := r.end(); err != nil {
		return err
	}
	if infoSigno != int32(ps.cursig) {
		return formatErrorf(n.off, "%s: pr_info.si_signo %d differs from pr_cursig %d", what, infoSigno, ps.cursig)
	}
	if it.is(ownerCore, ntPrfpreg) {
		n, _ := it.take(ownerCore, ntPrfpreg, "NT_PRFPREG")
		if len(n.desc) != fxsaveSize {
			return formatErrorf(n.off, "NT_PRFPREG of thread %d: descriptor is %d bytes, want %d", len(p.Threads), len(n.desc), fxsaveSize)
		}
		t.FPRegs = bytes.Clone(n.desc)
		ps.hasFP = true
	}
	if it.is(ownerLinux, ntX86XState) {
		n, _ := it.take(ownerLinux, ntX86XState, "NT_X86_XSTATE")
		if l := len(n.desc); l < xstateMinSize || l > MaxXStateSize {
			return formatErrorf(n.off, "NT_X86_XSTATE of thread %d: descriptor is %d bytes, want %d..%d", len(p.Threads), l, xstateMinSize, MaxXStateSize)
		}
		t.XState = bytes.Clone(n.desc)
	}
	if (ps.fpvalid != 0) != ps.hasFP || ps.fpvalid < 0 || ps.fpvalid > 1 {
		return formatErrorf(ps.off, "%s: pr_fpvalid %d disagrees with NT_PRFPREG presence", what, ps.fpvalid)
	}
	p.Threads = append(p.Threads, t)
	d.prs = append(d.prs, ps)
	if len(p.Threads) == 1 && it.is(ownerCore, ntSiginfo) {
		// A core dump's NT_SIGINFO (format 1.3): checked against the version flag.
		n, _ := it.take(ownerCore, ntSiginfo, "NT_SIGINFO")
		d.loc.siginfo = n.off
		var err error
		if p.SigInfo, err = decodeSiginfo(n); err != nil {
			return err
		}
		d.siginfoEarly = true
	}
	return nil
}

// needThread fails an image without NT_PRSTATUS.
func needThread(d *noteDecoder) error {
	if len(d.p.Threads) == 0 {
		return formatErrorf(d.it.base+int64(d.it.pos), "no NT_PRSTATUS note: an image needs at least one thread")
	}
	return nil
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

// decodeAuxvNote decodes NT_AUXV (encodeNotes writes it inline).
func decodeAuxvNote(d *noteDecoder, n *rawNote, _ int) error {
	d.loc.auxv = n.off
	if l := len(n.desc); l%auxEntrySize != 0 || l < auxEntrySize || l/auxEntrySize-1 > MaxAuxv {
		return formatErrorf(n.off, "NT_AUXV: descriptor size %d is not 1..%d 16-byte entries", l, MaxAuxv+1)
	}
	r := n.reader("NT_AUXV")
	for i := 0; i < len(n.desc)/auxEntrySize-1; i++ {
		d.p.Auxv = append(d.p.Auxv, AuxEntry{Key: r.u64(), Value: r.u64()})
	}
	if k, v := r.u64(), r.u64(); k != 0 || v != 0 {
		return formatErrorf(n.off, "NT_AUXV: last entry is not AT_NULL")
	}
	return nil
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

// ntFileEntry is one NT_FILE entry, kept to cross-check against the mapping records.
type ntFileEntry struct {
	start, end, pgoff uint64
	path              string
}

// ntFileNote is a parsed NT_FILE note.
type ntFileNote struct {
	off     int64
	entries []ntFileEntry
}

// decodeFileNote decodes NT_FILE (encodeNTFile); checkNTFile checks it against the mappings.
func decodeFileNote(d *noteDecoder, n *rawNote, _ int) error {
	var err error
	d.files, err = decodeNTFile(n)
	return err
}

func decodeNTFile(n *rawNote) (*ntFileNote, error) {
	r := n.reader("NT_FILE")
	count, pageSize := r.u64(), r.u64()
	if r.err != nil {
		return nil, r.err
	}
	if pageSize != PageSize {
		return nil, formatErrorf(n.off, "NT_FILE: page size %d, want %d", pageSize, PageSize)
	}
	if count > MaxMappings || count*nfileEntrySize > uint64(len(n.desc)-nfileHeaderSize) {
		return nil, formatErrorf(n.off, "NT_FILE: %d entries do not fit in %d bytes", count, len(n.desc))
	}
	f := &ntFileNote{off: n.off, entries: make([]ntFileEntry, count)}
	for i := range f.entries {
		e := &f.entries[i]
		e.start, e.end, e.pgoff = r.u64(), r.u64(), r.u64()
	}
	names := n.desc[r.off:]
	for i := range f.entries {
		k := bytes.IndexByte(names, 0)
		if k < 0 {
			return nil, formatErrorf(n.off, "NT_FILE: name %d is not NUL-terminated", i)
		}
		f.entries[i].path = string(names[:k])
		names = names[k+1:]
	}
	if len(names) != 0 {
		return nil, formatErrorf(n.off, "NT_FILE: %d trailing bytes after the names", len(names))
	}
	return f, nil
}

// checkNTFile checks that NT_FILE lists exactly the file-backed mappings.
func (d *noteDecoder) checkNTFile() error {
	files := d.files
	j := 0
	for i := range d.p.Mappings {
		m := &d.p.Mappings[i]
		if m.File == nil {
			continue
		}
		if j >= len(files.entries) {
			return formatErrorf(files.off, "NT_FILE: lists %d files, fewer than the file-backed mappings", len(files.entries))
		}
		e := files.entries[j]
		if e.start != m.Start || e.end != m.End || e.pgoff != m.FileOffset/PageSize || m.FileOffset%PageSize != 0 || e.path != m.File.Path {
			return formatErrorf(files.off, "NT_FILE: entry %d disagrees with mapping note %d", j, i)
		}
		j++
	}
	if j != len(files.entries) {
		return formatErrorf(files.off, "NT_FILE: lists %d files, but %d mappings are file-backed", len(files.entries), j)
	}
	return nil
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

// decodeSiginfo decodes an NT_SIGINFO descriptor.
func decodeSiginfo(n *rawNote) (*SigInfo, error) {
	if len(n.desc) != siginfoSize {
		return nil, formatErrorf(n.off, "NT_SIGINFO: descriptor is %d bytes, want %d", len(n.desc), siginfoSize)
	}
	r := n.reader("NT_SIGINFO")
	si := &SigInfo{}
	si.Signo, si.Errno, si.Code = r.i32(), r.i32(), r.i32()
	r.zero(4, "padding")
	if HasAddr(si.Signo, si.Code) {
		si.Addr = r.u64()
	} else {
		si.PID, si.UID = r.i32(), r.u32()
	}
	r.zero(siginfoSize-24, "rest of siginfo_t")
	if err := r.end(); err != nil {
		return nil, err
	}
	return si, nil
}

// decodeLateSiginfoNote decodes the NT_SIGINFO of an image that is not a core dump (encodeSiginfo).
func decodeLateSiginfoNote(d *noteDecoder, n *rawNote, _ int) error {
	if d.siginfoEarly {
		return formatErrorf(n.off, "a second NT_SIGINFO note")
	}
	d.loc.siginfo = n.off
	var err error
	d.p.SigInfo, err = decodeSiginfo(n)
	return err
}
