package imgfmt

import "fmt"

// runsc-ckpt's own notes about the process, each encoder beside its decoder: the version note, the
// process note, a thread note per thread and the signals note (docs/image-format.md §4.2).

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

// decodeVersionNote decodes our version note (encodeVersion) and checks the counts it gives.
func decodeVersionNote(d *noteDecoder, n *rawNote, _ int) error {
	p := d.p
	d.versionOff = n.off
	r := n.reader("version note")
	ownVersion(r)
	major, minor, flags, pageSize := r.u32(), r.u32(), r.u32(), r.u32()
	nthreads, nmaps, nfds := r.u32(), r.u32(), r.u32()
	p.Info.FreezeTimeNano = r.i64()
	p.Info.Platform = r.str("platform", MaxPlatformLen)
	if err := r.end(); err != nil {
		return err
	}
	p.CoreDump = flags&versionFlagCoreDump != 0
	d.minor, d.nfds = minor, int(nfds)
	switch {
	case major != FormatMajor:
		return formatErrorf(n.off, "version note: format version %d.%d, this reader knows %d.x", major, minor, FormatMajor)
	case minor > FormatMinor:
		return formatErrorf(n.off, "version note: format version %d.%d is newer than this reader's %d.%d", major, minor, FormatMajor, FormatMinor)
	case flags&^versionFlagCoreDump != 0:
		return formatErrorf(n.off, "version note: unknown flags %#x", flags)
	case flags&versionFlagCoreDump != 0 && (p.SigInfo == nil || !d.siginfoEarly):
		return formatErrorf(n.off, "version note: a core dump needs NT_SIGINFO right after thread 0's notes")
	case flags&versionFlagCoreDump == 0 && d.siginfoEarly:
		return formatErrorf(d.loc.siginfo, "NT_SIGINFO after thread 0's notes, but the image is not a core dump")
	case pageSize != PageSize:
		return formatErrorf(n.off, "version note: page size %d, want %d", pageSize, PageSize)
	case int(nthreads) != len(p.Threads):
		return formatErrorf(n.off, "version note: %d threads, but %d NT_PRSTATUS notes", nthreads, len(p.Threads))
	case int(nmaps) != d.nmappings:
		return formatErrorf(n.off, "version note: %d mappings, but %d PT_LOAD segments", nmaps, d.nmappings)
	case nfds > MaxFDs:
		return formatErrorf(n.off, "version note: %d fds exceed %d", nfds, MaxFDs)
	}
	return nil
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

// decodeProcessNote decodes our process note (encodeProcess), which NT_PRPSINFO must agree with.
func decodeProcessNote(d *noteDecoder, n *rawNote, _ int) error {
	p := d.p
	d.loc.process = n.off
	r := n.reader("process note")
	ownVersion(r)
	p.Info.PID, p.Info.PPID, p.Info.PGID, p.Info.SID = r.i32(), r.i32(), r.i32(), r.i32()
	c := &p.Creds
	c.UID, c.EUID, c.SUID, c.FSUID = r.u32(), r.u32(), r.u32(), r.u32()
	c.GID, c.EGID, c.SGID, c.FSGID = r.u32(), r.u32(), r.u32(), r.u32()
	ngroups := r.u32()
	if r.err == nil && (ngroups > MaxGroups || int(ngroups)*4 > len(r.b)-r.off) {
		r.fail("%d supplementary groups do not fit (max %d)", ngroups, MaxGroups)
	}
	for i := 0; r.err == nil && i < int(ngroups); i++ {
		c.Groups = append(c.Groups, r.u32())
	}
	p.Info.Name = r.str("name", MaxNameLen)
	p.Info.Args = r.str("args", MaxArgsLen)
	if err := r.end(); err != nil {
		return err
	}
	if ps := &d.prpsinfo; ps.uid != c.UID || ps.gid != c.GID || ps.pid != p.Info.PID || ps.ppid != p.Info.PPID || ps.pgid != p.Info.PGID || ps.sid != p.Info.SID || ps.name != p.Info.Name || ps.args != p.Info.Args {
		return formatErrorf(ps.off, "NT_PRPSINFO disagrees with the process note")
	}
	return nil
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

// decodeThreadNote decodes thread i's note (encodeThread), which its NT_PRSTATUS must agree with.
func decodeThreadNote(d *noteDecoder, n *rawNote, i int) error {
	p := d.p
	t := &p.Threads[i]
	what := fmt.Sprintf("thread note %d", i)
	d.loc.threads = append(d.loc.threads, n.off)
	r := n.reader(what)
	ownVersion(r)
	tid := r.i32()
	t.SigMask, t.SigPending = r.u64(), r.u64()
	t.AltStack.Addr, t.AltStack.Size = r.u64(), r.u64()
	t.AltStack.Flags = r.i32()
	r.zero(4, "reserved")
	t.ClearTID, t.RobustList = r.u64(), r.u64()
	if err := r.end(); err != nil {
		return err
	}
	ps := &d.prs[i]
	var wantSig uint16
	if p.SigInfo != nil && (i == 0 || p.CoreDump) {
		wantSig = uint16(p.SigInfo.Signo)
	}
	switch {
	case tid != t.TID:
		return formatErrorf(n.off, "%s: tid %d, but its NT_PRSTATUS says %d", what, tid, t.TID)
	case ps.sighold != t.SigMask || ps.sigpend != t.SigPending:
		return formatErrorf(ps.off, "NT_PRSTATUS of thread %d: signal mask or pending set disagrees with the thread note", i)
	case ps.ppid != p.Info.PPID || ps.pgrp != p.Info.PGID || ps.sid != p.Info.SID:
		return formatErrorf(ps.off, "NT_PRSTATUS of thread %d: ppid, pgrp or sid disagrees with the process note", i)
	case ps.cursig != wantSig:
		return formatErrorf(ps.off, "NT_PRSTATUS of thread %d: pr_cursig %d, want %d", i, ps.cursig, wantSig)
	}
	return nil
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

// decodeSignalsNote decodes our signals note (encodeSignals).
func decodeSignalsNote(d *noteDecoder, n *rawNote, _ int) error {
	d.loc.signals = n.off
	if len(n.desc) != signalsSize {
		return formatErrorf(n.off, "signals note: descriptor is %d bytes, want %d", len(n.desc), signalsSize)
	}
	r := n.reader("signals note")
	ownVersion(r)
	s := &d.p.Signals
	s.PdeathSig = r.i32()
	s.Pending = r.u64()
	for i := range s.Actions {
		a := &s.Actions[i]
		a.Handler, a.Flags, a.Restorer, a.Mask = r.u64(), r.u64(), r.u64(), r.u64()
	}
	for i := range s.Itimers {
		s.Itimers[i].IntervalNano, s.Itimers[i].ValueNano = r.i64(), r.i64()
	}
	return r.end()
}
