package imgfmt

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// headerLayout is the fixed part of an image: ELF header, program headers, notes, padding to the
// first data page, and where each mapping's data goes.
type headerLayout struct {
	head      []byte  // Everything before the first data byte, padded to dataStart.
	dataStart int64   // Page-aligned offset of the first segment data byte.
	offsets   []int64 // p_offset of each mapping's PT_LOAD.
	size      int64   // Total image size.
}

// pageAlign rounds n up to a multiple of PageSize.
func pageAlign(n int64) int64 { return (n + PageSize - 1) &^ (PageSize - 1) }

// buildHead lays out an image for a valid p.
func buildHead(p *Process) *headerLayout {
	notes := encodeNotes(p)
	phnum := 1 + len(p.Mappings)
	notesOff := int64(elfHeaderSize + phdrSize*phnum)
	dataStart := pageAlign(notesOff + int64(len(notes)))

	l := &headerLayout{dataStart: dataStart, offsets: make([]int64, len(p.Mappings))}
	w := &wbuf{b: make([]byte, 0, dataStart)}
	// ELF header.
	w.bytes([]byte{0x7f, 'E', 'L', 'F', elfClass64, elfData2LSB, elfVersion, elfOSABINone})
	w.zeros(8) // EI_ABIVERSION and padding.
	w.u16(elfTypeCore)
	w.u16(elfMachineX86)
	w.u32(elfVersion)
	w.u64(0) // e_entry
	w.u64(elfHeaderSize)
	w.u64(0) // e_shoff
	w.u32(0) // e_flags
	w.u16(elfHeaderSize)
	w.u16(phdrSize)
	w.u16(uint16(phnum))
	w.u16(0) // e_shentsize
	w.u16(0) // e_shnum
	w.u16(0) // e_shstrndx

	// PT_NOTE.
	writePhdr(w, ptNote, 0, notesOff, 0, uint64(len(notes)), 0, noteAlign)
	// PT_LOADs.
	cur := dataStart
	for i := range p.Mappings {
		m := &p.Mappings[i]
		l.offsets[i] = cur
		size := m.End - m.Start
		filesz := m.StoredSize()
		writePhdr(w, ptLoad, protToFlags(m.Prot), cur, m.Start, filesz, size, PageSize)
		cur += int64(filesz)
	}
	w.bytes(notes)
	w.zeros(int(dataStart) - len(w.b))
	l.head = w.b
	l.size = cur
	return l
}

func writePhdr(w *wbuf, typ, flags uint32, off int64, vaddr, filesz, memsz, align uint64) {
	w.u32(typ)
	w.u32(flags)
	w.u64(uint64(off))
	w.u64(vaddr)
	w.u64(0) // p_paddr
	w.u64(filesz)
	w.u64(memsz)
	w.u64(align)
}

// protToFlags maps PROT_* bits to PF_* bits.
func protToFlags(p Prot) uint32 {
	var f uint32
	if p&ProtRead != 0 {
		f |= pfR
	}
	if p&ProtWrite != 0 {
		f |= pfW
	}
	if p&ProtExec != 0 {
		f |= pfX
	}
	return f
}

// flagsToProt maps PF_* bits to PROT_* bits.
func flagsToProt(f uint32) Prot {
	var p Prot
	if f&pfR != 0 {
		p |= ProtRead
	}
	if f&pfW != 0 {
		p |= ProtWrite
	}
	if f&pfX != 0 {
		p |= ProtExec
	}
	return p
}

// ImageSize returns the size in bytes of the image Encode writes for p (holes included).
func ImageSize(p *Process) (int64, error) {
	if err := Validate(p); err != nil {
		return 0, err
	}
	return buildHead(p).size, nil
}

// Encode validates p and writes its image to w, streaming: headers and notes first, then each
// MapContent mapping's bytes read from Mapping.Contents in 1 MiB chunks. w is adapted with NewSink,
// so all-zero 4 KiB pages become holes when w is a Sink or a seekable file, and zero bytes on a pipe.
// w must be positioned where the image starts. Encode never seeks backwards.
func Encode(w io.Writer, p *Process) error {
	if err := Validate(p); err != nil {
		return err
	}
	for i := range p.Mappings {
		if m := &p.Mappings[i]; m.StoredSize() != 0 && m.Contents == nil {
			return formatErrorf(-1, "mapping %d [%#x, %#x): kind %d stores bytes but has no Contents", i, m.Start, m.End, m.Kind)
		}
	}
	l := buildHead(p)
	e := &encoder{sink: NewSink(w)}
	if _, err := e.sink.Write(l.head); err != nil {
		return fmt.Errorf("imgfmt: writing headers and notes: %w", err)
	}
	var largest uint64
	for i := range p.Mappings {
		largest = max(largest, p.Mappings[i].StoredSize())
	}
	e.bufSize = min(largest, chunkSize)
	for i := range p.Mappings {
		m := &p.Mappings[i]
		if m.StoredSize() == 0 {
			continue
		}
		encodeMapping := e.copyMapping
		if v, ok := m.Contents.(ContentViewer); ok {
			encodeMapping = func(m *Mapping) error { return e.viewMapping(v, m) }
		}
		if err := encodeMapping(m); err != nil {
			return fmt.Errorf("imgfmt: mapping %d [%#x, %#x): %w", i, m.Start, m.End, err)
		}
	}
	if err := e.finish(); err != nil {
		return fmt.Errorf("imgfmt: finishing image: %w", err)
	}
	return nil
}

// encoder writes segment data, turning all-zero pages into holes.
type encoder struct {
	sink    Sink
	buf     []byte // One chunk of mapping data, made by copyMapping when first needed.
	bufSize uint64 // buf's size: the largest mapping's stored size, at most a chunk.
	pending int64  // Zero bytes not yet written or skipped.
}

// copyMapping writes m's stored bytes from m.Contents.
func (e *encoder) copyMapping(m *Mapping) error {
	size := int64(m.StoredSize())
	_, stream := e.sink.(*StreamSink)
	if e.buf == nil {
		// Not made up front: mappings a ContentViewer serves never need it (a sentry image's
		// memory), and 1 MiB per image is heap the sentry would allocate right after a snapshot.
		e.buf = make([]byte, e.bufSize)
	}
	for off := int64(0); off < size; {
		n := min(size-off, int64(len(e.buf)))
		b := e.buf[:n]
		if err := readFullAt(m.Contents, b, off); err != nil {
			return fmt.Errorf("reading contents at %#x: %w", off, err)
		}
		off += n
		if stream {
			if err := e.write(b); err != nil {
				return err
			}
			continue
		}
		// Coalesce runs of non-zero pages into single writes; zero pages become pending holes.
		if err := e.writeSkippingZeroPages(b); err != nil {
			return err
		}
	}
	return nil
}

// holeMinBytes is the shortest run of zero pages the encoder leaves as a hole; shorter runs are
// written as zeros. Measured on ext4 (docs/image-format.md): a hole between every few data pages
// splits the file into one extent per run and made writing 2.6 times slower than writing the zeros.
const holeMinBytes = 16 * PageSize

// flushZeros turns the pending zero pages into a hole (a long run) or written zeros (a short run).
func (e *encoder) flushZeros() error {
	n := e.pending
	e.pending = 0
	if n >= holeMinBytes {
		return e.sink.Hole(n)
	}
	for n > 0 {
		c := min(n, int64(len(zeroChunk)))
		if _, err := e.sink.Write(zeroChunk[:c]); err != nil {
			return err
		}
		n -= c
	}
	return nil
}

// write flushes the pending zero pages, then writes b.
func (e *encoder) write(b []byte) error {
	if e.pending > 0 {
		if err := e.flushZeros(); err != nil {
			return err
		}
	}
	if _, err := e.sink.Write(b); err != nil {
		return err
	}
	return nil
}

// finish writes out trailing zero pages: a long run becomes a hole except for its last page, which
// is written as zeros so the file's size covers the whole image without a truncate.
func (e *encoder) finish() error {
	if e.pending < holeMinBytes {
		return e.flushZeros()
	}
	e.pending -= PageSize
	if err := e.flushZeros(); err != nil {
		return err
	}
	_, err := e.sink.Write(zeroChunk[:PageSize])
	return err
}

// isZeroPage reports whether b (one page) is all zeros.
func isZeroPage(b []byte) bool {
	// Checking the first word first makes the common non-zero case cheap.
	if binary.LittleEndian.Uint64(b) != 0 {
		return false
	}
	return bytes.Equal(b, zeroChunk[:len(b)])
}

// readFullAt fills b from r at off; a short read is an error.
func readFullAt(r io.ReaderAt, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := r.ReadAt(b, off)
		b = b[n:]
		off += int64(n)
		if len(b) == 0 {
			return nil
		}
		if err != nil {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		if n == 0 {
			return io.ErrNoProgress
		}
	}
	return nil
}
