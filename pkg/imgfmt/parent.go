package imgfmt

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
)

// This file holds incremental images (format 1.4, docs/incremental.md): the parent note that names
// the image an incremental image is relative to, and the delta notes that say which pages of a
// content mapping the image stores; the other pages are the parent's bytes at the same addresses.

// Note types of format 1.4 (owner OwnerRunscCkpt).
const (
	NoteParent = 0x5243000A // The parent image; optional (format 1.4), after the object notes.
	NoteDelta  = 0x5243000B // The stored pages of one delta mapping; after the parent note.
)

// Layout of the incremental notes.
const (
	// minorIncremental is the first revision with parent and delta notes.
	minorIncremental = 4
	// mapFlagDelta (format 1.4): a content mapping that stores only the pages its delta note lists.
	mapFlagDelta = 1 << 4
	// parentFixedSize is the parent note's fixed part: layout, reserved, freeze time, size, notes
	// digest, handle; the path follows.
	parentFixedSize = 56 + handleSize
	// deltaFixedSize is the delta note's fixed part: layout, mapping index, run count, reserved;
	// the runs follow.
	deltaFixedSize = 16
	// deltaRunSize is one run: first page, page count.
	deltaRunSize = 16
	// MaxChainDepth is the most images a chain holds, the complete one at its root included; a
	// freeze that would make a chain deeper writes a complete image.
	MaxChainDepth = 16
)

// ParentRef names the image an incremental image is relative to and identifies it, so that a
// thaw can refuse a parent that is not the very image the freeze compared against (ESTALE).
type ParentRef struct {
	// Image is the parent image file: its path in the sandbox's mount namespace at the freeze and
	// its attributes then.
	Image FileHandle
	// Size is the parent image's size in bytes.
	Size int64
	// NotesSHA256 is the SHA-256 of the parent's PT_NOTE segment: it identifies that exact image
	// whatever its file's metadata (NotesDigest).
	NotesSHA256 [32]byte
	// FreezeTimeNano is the parent's ProcessInfo.FreezeTimeNano.
	FreezeTimeNano int64
}

// PageRun is a run of pages of a delta mapping that the image stores: pages [Page, Page+Pages)
// counted from the mapping's start.
type PageRun struct {
	Page, Pages uint64
}

// deltaPages returns how many pages m's runs store.
func deltaPages(m *Mapping) uint64 {
	var n uint64
	for _, r := range m.Runs {
		n += r.Pages
	}
	return n
}

// NotesDigest returns the SHA-256 of the PT_NOTE segment of the image in r (size bytes), the
// identity a child's ParentRef records. The image is decoded first; a malformed one is an error.
func NotesDigest(r io.ReaderAt, size int64) ([32]byte, error) {
	src := &readerAtSource{r: r, size: size}
	if _, err := decodeHead(src); err != nil {
		return [32]byte{}, err
	}
	ph, err := src.read(elfHeaderSize, phdrSize, "PT_NOTE header")
	if err != nil {
		return [32]byte{}, err
	}
	off, n := binary.LittleEndian.Uint64(ph[8:]), binary.LittleEndian.Uint64(ph[32:])
	notes, err := src.read(int64(off), int64(n), "note segment")
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(notes), nil
}

// encodeIncremental appends the parent note and the delta notes of p, if it has a parent.
func encodeIncremental(d *wbuf, note func(owner string, typ uint32), p *Process) {
	if p.Parent == nil {
		return
	}
	pr := p.Parent
	d.u32(noteLayoutVersion)
	d.u32(0) // reserved
	d.i64(pr.FreezeTimeNano)
	d.i64(pr.Size)
	d.bytes(pr.NotesSHA256[:])
	encodeHandle(d, &pr.Image)
	d.str(pr.Image.Path)
	note(OwnerRunscCkpt, NoteParent)
	for i := range p.Mappings {
		m := &p.Mappings[i]
		if !m.Delta {
			continue
		}
		d.u32(noteLayoutVersion)
		d.u32(uint32(i))
		d.u32(uint32(len(m.Runs)))
		d.u32(0) // reserved
		for _, r := range m.Runs {
			d.u64(r.Page)
			d.u64(r.Pages)
		}
		note(OwnerRunscCkpt, NoteDelta)
	}
}

// decodeIncremental reads the optional parent note and the delta notes that follow it. deltaFlags
// lists the mappings whose record has the delta flag; each must have exactly one delta note, in
// mapping order.
func decodeIncremental(it *noteIter, p *Process, deltaFlags []int) error {
	if !it.is(OwnerRunscCkpt, NoteParent) {
		if len(deltaFlags) > 0 {
			return formatErrorf(it.cur.off, "mapping %d is a delta but the image has no parent note", deltaFlags[0])
		}
		return nil
	}
	n, _ := it.take(OwnerRunscCkpt, NoteParent, "the parent note")
	r := n.reader("parent note")
	ownVersion(r)
	r.zero(4, "reserved")
	pr := &ParentRef{}
	pr.FreezeTimeNano = r.i64()
	pr.Size = r.i64()
	copy(pr.NotesSHA256[:], r.take(32))
	h := decodeHandle(r, true)
	decodeHandlePath(r, h)
	if err := r.end(); err != nil {
		return err
	}
	pr.Image = *h
	p.Parent = pr
	for _, i := range deltaFlags {
		what := fmt.Sprintf("delta note of mapping %d", i)
		n, err := it.take(OwnerRunscCkpt, NoteDelta, what)
		if err != nil {
			return err
		}
		r := n.reader(what)
		ownVersion(r)
		idx, nruns := r.u32(), r.u32()
		r.zero(4, "reserved")
		if r.err == nil && idx != uint32(i) {
			r.fail("names mapping %d, want %d (one delta note per delta mapping, in mapping order)", idx, i)
		}
		m := &p.Mappings[i]
		pages := (m.End - m.Start) / PageSize
		// Runs are non-adjacent, so a mapping of n pages has at most (n+1)/2 of them; the note's
		// length bounds the allocation as well.
		if r.err == nil && (uint64(nruns) > (pages+1)/2 || int(nruns) > len(r.b)/deltaRunSize) {
			r.fail("%d runs do not fit a mapping of %d pages or the note", nruns, pages)
		}
		if r.err == nil {
			m.Runs = make([]PageRun, 0, nruns)
		}
		for j := 0; j < int(nruns) && r.err == nil; j++ {
			m.Runs = append(m.Runs, PageRun{Page: r.u64(), Pages: r.u64()})
		}
		if err := r.end(); err != nil {
			return err
		}
		if msg := checkPageRuns(m); msg != "" {
			return formatErrorf(n.off, "%s: %s", what, msg)
		}
	}
	if it.is(OwnerRunscCkpt, NoteDelta) {
		return formatErrorf(it.cur.off, "a delta note for a mapping without the delta flag")
	}
	return nil
}

// checkPageRuns returns what is wrong with a delta mapping's runs, or "": each run non-empty, inside
// the mapping, after the previous one with a gap (adjacent runs are one run).
func checkPageRuns(m *Mapping) string {
	pages := (m.End - m.Start) / PageSize
	var next uint64
	for j, r := range m.Runs {
		switch {
		case r.Pages == 0:
			return fmt.Sprintf("run %d is empty", j)
		case r.Page > pages || r.Pages > pages-r.Page:
			return fmt.Sprintf("run %d [%d, +%d) is outside the mapping's %d pages", j, r.Page, r.Pages, pages)
		case j > 0 && r.Page <= next:
			return fmt.Sprintf("run %d at page %d does not follow run %d ending at page %d with a gap", j, r.Page, j-1, next)
		}
		next = r.Page + r.Pages
	}
	return ""
}

// validateIncremental checks p's parent reference and delta mappings.
func validateIncremental(p *Process, fail func(part string, idx int, format string, args ...any) error) error {
	if pr := p.Parent; pr != nil {
		if err := checkHandle(&pr.Image); err != "" {
			return fail(partParent, -1, "image: %s", err)
		}
		if pr.Image.Path == "" || pr.Image.Path[0] != '/' {
			return fail(partParent, -1, "path %q is not absolute", pr.Image.Path)
		}
		if pr.Size < elfHeaderSize {
			return fail(partParent, -1, "size %d is not an image's", pr.Size)
		}
	}
	for i := range p.Mappings {
		m := &p.Mappings[i]
		if !m.Delta {
			if m.Runs != nil {
				return fail(partMapping, i, "has page runs but is not a delta mapping")
			}
			continue
		}
		switch {
		case p.Parent == nil:
			return fail(partMapping, i, "is a delta but the image names no parent")
		case m.Kind != MapContent || m.Shared:
			return fail(partMapping, i, "only a private content mapping can be a delta (kind %d, shared %v)", m.Kind, m.Shared)
		}
		if msg := checkPageRuns(m); msg != "" {
			return fail(partMapping, i, "%s", msg)
		}
	}
	return nil
}
