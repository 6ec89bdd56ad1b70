package imgfmt

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// This file parses the PT_NOTE segment back into a Process, checking each note's owner, type, size
// and layout version, their order, and that the standard notes agree with our own. Each note type is
// decoded by its own function (decodeXxxNote, the mirror of notes_encode.go's encodeXxx), and
// noteSteps lists them in segment order with how many of each an image has.

// rawNote is one note as found in the segment.
type rawNote struct {
	off   int64 // Image offset of the note header.
	owner string
	typ   uint32
	desc  []byte
	dOff  int64 // Image offset of desc.
	valid bool
}

// noteIter walks the notes of a PT_NOTE segment one at a time.
type noteIter struct {
	b    []byte
	pos  int
	base int64 // Image offset of b[0].
	cur  rawNote
	err  error
}

// peek parses the note at the current position (if not done yet) and returns it; ok is false at the
// end of the segment or on error (it.err).
func (it *noteIter) peek() (*rawNote, bool) {
	if it.err != nil {
		return nil, false
	}
	if it.cur.valid {
		return &it.cur, true
	}
	rest := it.b[it.pos:]
	if len(rest) == 0 {
		return nil, false
	}
	off := it.base + int64(it.pos)
	if len(rest) < noteHeaderSize {
		it.err = formatErrorf(off, "note header: %d bytes left in the note segment, need %d", len(rest), noteHeaderSize)
		return nil, false
	}
	namesz := binary.LittleEndian.Uint32(rest[0:])
	descsz := binary.LittleEndian.Uint32(rest[4:])
	typ := binary.LittleEndian.Uint32(rest[8:])
	if namesz == 0 || namesz > maxNoteOwnerBytes {
		it.err = formatErrorf(off, "note owner size %d out of range [1, %d]", namesz, maxNoteOwnerBytes)
		return nil, false
	}
	nameEnd := noteHeaderSize + pad4(int(namesz))
	if nameEnd > len(rest) {
		it.err = formatErrorf(off, "note owner runs past the note segment")
		return nil, false
	}
	name := rest[noteHeaderSize : noteHeaderSize+int(namesz)]
	if name[namesz-1] != 0 || bytes.IndexByte(name[:namesz-1], 0) >= 0 {
		it.err = formatErrorf(off, "note owner is not a NUL-terminated string")
		return nil, false
	}
	if uint64(descsz) > uint64(len(rest)-nameEnd) {
		it.err = formatErrorf(off, "note %q type %#x: descriptor size %d runs past the note segment", name[:namesz-1], typ, descsz)
		return nil, false
	}
	end := nameEnd + pad4(int(descsz))
	if end > len(rest) {
		it.err = formatErrorf(off, "note %q type %#x: descriptor padding runs past the note segment", name[:namesz-1], typ)
		return nil, false
	}
	for _, c := range rest[noteHeaderSize+int(namesz) : nameEnd] {
		if c != 0 {
			it.err = formatErrorf(off, "note owner padding is not zero")
			return nil, false
		}
	}
	for _, c := range rest[nameEnd+int(descsz) : end] {
		if c != 0 {
			it.err = formatErrorf(off, "note descriptor padding is not zero")
			return nil, false
		}
	}
	it.cur = rawNote{
		off:   off,
		owner: string(name[:namesz-1]),
		typ:   typ,
		desc:  rest[nameEnd : nameEnd+int(descsz)],
		dOff:  off + int64(nameEnd),
		valid: true,
	}
	it.pos += end
	return &it.cur, true
}

// is reports whether the next note is owner/typ.
func (it *noteIter) is(owner string, typ uint32) bool {
	n, ok := it.peek()
	return ok && n.owner == owner && n.typ == typ
}

// take consumes the next note, which must be owner/typ; what names it for errors.
func (it *noteIter) take(owner string, typ uint32, what string) (*rawNote, error) {
	n, ok := it.peek()
	if !ok {
		if it.err != nil {
			return nil, it.err
		}
		return nil, formatErrorf(it.base+int64(it.pos), "note segment ends where %s (%s type %#x) is expected", what, owner, typ)
	}
	if n.owner != owner || n.typ != typ {
		return nil, formatErrorf(n.off, "found note %q type %#x where %s (%s type %#x) is expected", n.owner, n.typ, what, owner, typ)
	}
	it.cur.valid = false
	c := *n
	return &c, nil
}

// reader returns an rbuf over n's descriptor.
func (n *rawNote) reader(what string) *rbuf {
	return &rbuf{b: n.desc, base: n.dOff, what: what}
}

// ownVersion reads and checks the layout version that starts each of our notes.
func ownVersion(r *rbuf) {
	if v := r.u32(); r.err == nil && v != noteLayoutVersion {
		r.off -= 4
		r.fail("note layout version %d, this reader knows %d", v, noteLayoutVersion)
	}
}

// noteLocations remembers where each part of the Process came from, for error offsets.
type noteLocations struct {
	process, signals, vm, auxv, siginfo int64
	cwd, parent                         int64
	threads, files, mappings, objects   []int64
	phdrs                               int64 // Offset of the program header table.
}

func (l *noteLocations) locate(part string, idx int) int64 {
	pick := func(v []int64) int64 {
		if idx >= 0 && idx < len(v) {
			return v[idx]
		}
		return -1
	}
	switch part {
	case partProcess:
		return l.process
	case partSignals:
		return l.signals
	case partVM:
		return l.vm
	case partAuxv:
		return l.auxv
	case partSiginfo:
		return l.siginfo
	case partThread:
		return pick(l.threads)
	case partFile:
		return pick(l.files)
	case partMapping:
		return pick(l.mappings)
	case partCwd:
		return l.cwd
	case partObject:
		return pick(l.objects)
	case partParent:
		return l.parent
	}
	return -1
}

// ntFileEntry is one NT_FILE entry, kept to cross-check against the mapping records.
type ntFileEntry struct {
	start, end, pgoff uint64
	path              string
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

// noteDecoder is the state of decodeNotes: the process being built, where each part came from, and
// what later notes are checked against.
type noteDecoder struct {
	it        *noteIter
	p         *Process
	loc       *noteLocations
	nmappings int // The PT_LOAD count.

	prpsinfo     prpsinfoNote   // NT_PRPSINFO, checked against the process note.
	prs          []prstatusInfo // Per thread, checked against its thread note.
	siginfoEarly bool           // NT_SIGINFO came right after thread 0's notes (a core dump).
	files        *ntFileNote    // NT_FILE, checked against the mapping notes.
	minor        uint32         // The version note's format revision.
	versionOff   int64
	nfds         int
	deltas       []int // Mappings with the delta flag (format 1.4), checked against the delta notes.
}

// prpsinfoNote is what NT_PRPSINFO holds, kept to cross-check with the process note.
type prpsinfoNote struct {
	off                  int64
	uid, gid             uint32
	pid, ppid, pgid, sid int32
	name, args           string
}

// How many notes of a type a noteStep reads.
type noteCount int

const (
	noteOnce     noteCount = iota // Exactly one.
	noteOptional                  // Zero or one.
	noteRepeated                  // As many as follow (up to max).
	noteCounted                   // Exactly count() of them.
)

// noteStep decodes the notes of one type at their place in the segment.
type noteStep struct {
	owner string
	typ   uint32
	what  string // Names the note in errors; with noteCounted, a format taking the note's index.
	count noteCount
	n     func(d *noteDecoder) int                      // noteCounted: how many.
	max   int                                           // noteRepeated: the limit ...
	over  string                                        // ... and what exceeds it ("more than %d threads").
	dec   func(d *noteDecoder, n *rawNote, i int) error // Decodes the i-th note of the type.
	after func(d *noteDecoder) error                    // If not nil, runs once the step's notes are read.
}

// noteSteps are the notes of an image in the order they stand in its note segment (encodeNotes
// writes them in the same order), each decoded by its own function below.
var noteSteps = []noteStep{
	{owner: ownerCore, typ: ntPrpsinfo, what: "NT_PRPSINFO", count: noteOnce, dec: decodePrpsinfoNote},
	{owner: ownerCore, typ: ntPrstatus, what: "NT_PRSTATUS", count: noteRepeated, max: MaxThreads, over: "more than %d threads",
		dec: decodePrstatusNote, after: needThread},
	{owner: ownerCore, typ: ntAuxv, what: "NT_AUXV", count: noteOnce, dec: decodeAuxvNote},
	{owner: ownerCore, typ: ntFile, what: "NT_FILE", count: noteOnce, dec: decodeFileNote},
	{owner: ownerCore, typ: ntSiginfo, what: "NT_SIGINFO", count: noteOptional, dec: decodeLateSiginfoNote},
	{owner: OwnerRunscCkpt, typ: NoteVersion, what: "the version note", count: noteOnce, dec: decodeVersionNote},
	{owner: OwnerRunscCkpt, typ: NoteProcess, what: "the process note", count: noteOnce, dec: decodeProcessNote},
	{owner: OwnerRunscCkpt, typ: NoteThread, what: "thread note %d", count: noteCounted, n: func(d *noteDecoder) int { return len(d.p.Threads) },
		dec: decodeThreadNote},
	{owner: OwnerRunscCkpt, typ: NoteSignals, what: "the signals note", count: noteOnce, dec: decodeSignalsNote},
	{owner: OwnerRunscCkpt, typ: NoteFD, what: "fd note %d", count: noteCounted, n: func(d *noteDecoder) int { return d.nfds }, dec: decodeFDNote},
	{owner: OwnerRunscCkpt, typ: NoteVM, what: "the vm note", count: noteOnce, dec: decodeVMNote},
	{owner: OwnerRunscCkpt, typ: NoteMapping, what: "mapping note %d", count: noteCounted, n: func(d *noteDecoder) int { return d.nmappings },
		dec: decodeMappingNote},
	{owner: OwnerRunscCkpt, typ: NoteCwd, what: "the cwd note", count: noteOptional, dec: decodeCwdNote},
	{owner: OwnerRunscCkpt, typ: NoteObject, what: "an object note", count: noteRepeated, max: MaxObjects, over: "more than %d objects",
		dec: decodeObjectNote},
}

// decodeNotes parses the note segment b (at image offset base). nmappings is the PT_LOAD count.
func decodeNotes(b []byte, base int64, nmappings int) (*Process, *noteLocations, error) {
	d := &noteDecoder{
		it:        &noteIter{b: b, base: base},
		p:         &Process{},
		loc:       &noteLocations{siginfo: -1, cwd: -1, parent: -1},
		nmappings: nmappings,
	}
	it := d.it
	for i := range noteSteps {
		st := &noteSteps[i]
		if err := d.run(st); err != nil {
			return nil, nil, err
		}
		if st.count == noteOptional || st.count == noteRepeated {
			if it.err != nil {
				return nil, nil, it.err
			}
		}
		if st.after != nil {
			if err := st.after(d); err != nil {
				return nil, nil, err
			}
		}
	}
	// Parent and delta notes (format 1.4): decoded together, since the delta notes are checked
	// against the mappings' delta flags and each other.
	if it.is(OwnerRunscCkpt, NoteParent) {
		d.loc.parent = it.cur.off
	}
	if err := decodeIncremental(it, d.p, d.deltas); err != nil {
		return nil, nil, err
	}
	if _, ok := it.peek(); ok {
		return nil, nil, formatErrorf(it.cur.off, "unexpected note %q type %#x after the last mapping, cwd, object, parent or delta note", it.cur.owner, it.cur.typ)
	}
	if it.err != nil {
		return nil, nil, it.err
	}
	// The revision is the lowest that expresses the image (canonical form).
	if want := imageMinor(d.p); d.minor != want {
		return nil, nil, formatErrorf(d.versionOff, "version note: format revision %d, but an image with these notes is revision %d", d.minor, want)
	}
	if err := d.checkNTFile(); err != nil {
		return nil, nil, err
	}
	return d.p, d.loc, nil
}

// run reads st's notes.
func (d *noteDecoder) run(st *noteStep) error {
	it := d.it
	switch st.count {
	case noteOnce, noteOptional:
		if st.count == noteOptional && !it.is(st.owner, st.typ) {
			return nil
		}
		n, err := it.take(st.owner, st.typ, st.what)
		if err != nil {
			return err
		}
		return st.dec(d, n, 0)
	case noteRepeated:
		for i := 0; it.is(st.owner, st.typ); i++ {
			if i == st.max {
				return formatErrorf(it.cur.off, st.over, st.max)
			}
			n, _ := it.take(st.owner, st.typ, st.what)
			if err := st.dec(d, n, i); err != nil {
				return err
			}
		}
		return nil
	default: // noteCounted
		for i := 0; i < st.n(d); i++ {
			n, err := it.take(st.owner, st.typ, fmt.Sprintf(st.what, i))
			if err != nil {
				return err
			}
			if err := st.dec(d, n, i); err != nil {
				return err
			}
		}
		return nil
	}
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

// decodeFileNote decodes NT_FILE (encodeNTFile); checkNTFile checks it against the mappings.
func decodeFileNote(d *noteDecoder, n *rawNote, _ int) error {
	var err error
	d.files, err = decodeNTFile(n)
	return err
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

// decodeFDNote decodes fd note i (encodeFD).
func decodeFDNote(d *noteDecoder, n *rawNote, i int) error {
	d.loc.files = append(d.loc.files, n.off)
	r := n.reader(fmt.Sprintf("fd note %d", i))
	ownVersion(r)
	var f File
	f.FD = r.i32()
	f.FDFlags, f.StatusFlags = r.u32(), r.u32()
	f.Offset = r.i64()
	f.Kind = FileKind(r.u32())
	flags := r.u32()
	if r.err == nil && flags&^(fdFlagIsImage|fdFlagHasHandle) != 0 {
		r.off -= 4
		r.fail("unknown flags %#x", flags)
	}
	f.IsImage = flags&fdFlagIsImage != 0
	f.Handle = decodeHandle(r, flags&fdFlagHasHandle != 0)
	f.Desc = r.str("description", MaxPathLen)
	decodeHandlePath(r, f.Handle)
	if err := r.end(); err != nil {
		return err
	}
	d.p.Files = append(d.p.Files, f)
	return nil
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

// decodeCwdNote decodes the working directory note (encodeCwd; format 1.1).
func decodeCwdNote(d *noteDecoder, n *rawNote, _ int) error {
	d.loc.cwd = n.off
	r := n.reader("cwd note")
	ownVersion(r)
	r.zero(4, "reserved")
	h := decodeHandle(r, true)
	decodeHandlePath(r, h)
	if err := r.end(); err != nil {
		return err
	}
	d.p.Cwd = h
	return nil
}

// decodeObjectNote decodes object note i (encodeObject; format 1.2).
func decodeObjectNote(d *noteDecoder, n *rawNote, i int) error {
	d.loc.objects = append(d.loc.objects, n.off)
	o, err := decodeObject(n.reader(fmt.Sprintf("object note %d", i)))
	if err != nil {
		return err
	}
	d.p.Objects = append(d.p.Objects, o)
	return nil
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

// decodeHandle reads a handle's fixed 48 bytes; they must be zero when the handle is absent.
func decodeHandle(r *rbuf, present bool) *FileHandle {
	if !present {
		r.zero(handleSize, "absent file handle")
		return nil
	}
	h := &FileHandle{}
	h.Mode, h.DevMajor, h.DevMinor = r.u32(), r.u32(), r.u32()
	r.zero(4, "handle reserved")
	h.Ino = r.u64()
	h.Size, h.MtimeNano, h.CtimeNano = r.i64(), r.i64(), r.i64()
	return h
}

// decodeHandlePath reads the handle path string: non-empty for a present handle, empty otherwise.
func decodeHandlePath(r *rbuf, h *FileHandle) {
	path := r.str("file handle path", MaxPathLen)
	if r.err != nil {
		return
	}
	if h == nil {
		if path != "" {
			r.fail("path %q without a file handle", path)
		}
		return
	}
	if path == "" {
		r.fail("file handle with an empty path")
	}
	h.Path = path
}

// ntFileNote is a parsed NT_FILE note.
type ntFileNote struct {
	off     int64
	entries []ntFileEntry
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
