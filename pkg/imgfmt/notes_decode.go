package imgfmt

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// This file parses the PT_NOTE segment back into a Process, checking each note's owner, type, size
// and layout version, their order, and that the standard notes agree with our own. Each note type is
// decoded by its own function (decodeXxxNote), which stands beside its encoder (encodeXxx) in
// notes_core.go, notes_process.go, notes_files.go or notes_memory.go; noteSteps lists them in
// segment order with how many of each an image has.

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
