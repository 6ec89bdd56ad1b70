package imgfmt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// source reads the head of an image (ELF header, program headers, notes) in increasing offset order.
type source interface {
	// read returns the n bytes at off. n is not trusted: implementations must not allocate it up
	// front unless the input is known to hold it.
	read(off, n int64, what string) ([]byte, error)
}

// decodedHead is the result of parsing an image's head.
type decodedHead struct {
	p         *Process
	dataStart int64
	size      int64 // Image size implied by the program headers.
}

// decodeHead reads and validates everything before the segment data, and checks every PT_LOAD
// against its mapping record. It sets Mapping.DataOffset.
func decodeHead(src source) (*decodedHead, error) {
	h, err := src.read(0, elfHeaderSize, "ELF header")
	if err != nil {
		return nil, err
	}
	phnum, err := checkELFHeader(h)
	if err != nil {
		return nil, err
	}
	phdrs, err := src.read(elfHeaderSize, int64(phnum)*phdrSize, "program headers")
	if err != nil {
		return nil, err
	}
	ph := func(i int) (typ, flags uint32, off, vaddr, paddr, filesz, memsz, align uint64) {
		b := phdrs[i*phdrSize:]
		le := binary.LittleEndian
		return le.Uint32(b), le.Uint32(b[4:]), le.Uint64(b[8:]), le.Uint64(b[16:]), le.Uint64(b[24:]),
			le.Uint64(b[32:]), le.Uint64(b[40:]), le.Uint64(b[48:])
	}
	phOff := func(i int) int64 { return elfHeaderSize + int64(i)*phdrSize }

	// PT_NOTE, right after the program headers.
	typ, flags, off, vaddr, paddr, filesz, memsz, align := ph(0)
	notesOff := phOff(phnum)
	switch {
	case typ != ptNote:
		return nil, formatErrorf(phOff(0), "program header 0: type %#x, want PT_NOTE", typ)
	case off != uint64(notesOff):
		return nil, formatErrorf(phOff(0), "PT_NOTE: offset %#x, want %#x (right after the program headers)", off, notesOff)
	case filesz == 0 || filesz > MaxNotesSize:
		return nil, formatErrorf(phOff(0), "PT_NOTE: size %d out of range [1, %d]", filesz, MaxNotesSize)
	case flags != 0 || vaddr != 0 || paddr != 0 || memsz != 0 || align != noteAlign:
		return nil, formatErrorf(phOff(0), "PT_NOTE: flags, addresses, memory size or alignment are not (0, 0, 0, 0, %d)", noteAlign)
	}
	notes, err := src.read(notesOff, int64(filesz), "note segment")
	if err != nil {
		return nil, err
	}
	p, loc, err := decodeNotes(notes, notesOff, phnum-1)
	if err != nil {
		return nil, err
	}
	loc.phdrs = elfHeaderSize

	// Zero padding up to the first data page.
	notesEnd := notesOff + int64(filesz)
	dataStart := pageAlign(notesEnd)
	pad, err := src.read(notesEnd, dataStart-notesEnd, "padding after the notes")
	if err != nil {
		return nil, err
	}
	for i, c := range pad {
		if c != 0 {
			return nil, formatErrorf(notesEnd+int64(i), "padding after the notes is not zero")
		}
	}

	// PT_LOADs against the mapping records, and the data layout.
	cur := dataStart
	for i := range p.Mappings {
		m := &p.Mappings[i]
		at := phOff(i + 1)
		typ, flags, off, vaddr, paddr, filesz, memsz, align := ph(i + 1)
		wantFilesz := m.StoredSize()
		if m.Kind == MapContent && !m.Delta {
			wantFilesz = memsz // Checked against the mapping below.
		}
		switch {
		case typ != ptLoad:
			return nil, formatErrorf(at, "program header %d: type %#x, want PT_LOAD", i+1, typ)
		case flags&^(pfR|pfW|pfX) != 0:
			return nil, formatErrorf(at, "PT_LOAD %d: unknown flags %#x", i, flags)
		case vaddr != m.Start || memsz != m.End-m.Start:
			return nil, formatErrorf(at, "PT_LOAD %d: [%#x, +%#x) disagrees with mapping note %d [%#x, %#x)", i, vaddr, memsz, i, m.Start, m.End)
		case flagsToProt(flags) != m.Prot:
			return nil, formatErrorf(at, "PT_LOAD %d: flags %#x disagree with the mapping's protection %#x", i, flags, uint32(m.Prot))
		case paddr != 0 || align != PageSize:
			return nil, formatErrorf(at, "PT_LOAD %d: p_paddr %#x or p_align %#x is not (0, %#x)", i, paddr, align, PageSize)
		case filesz != wantFilesz:
			return nil, formatErrorf(at, "PT_LOAD %d: file size %#x, want %#x for a kind-%d mapping", i, filesz, wantFilesz, m.Kind)
		case off != uint64(cur):
			return nil, formatErrorf(at, "PT_LOAD %d: offset %#x, want %#x (segments are packed in order from the first page after the notes)", i, off, cur)
		}
		if filesz != 0 {
			m.DataOffset = cur
			// Mapping sizes are checked below by validate; guard the sum against overflow here.
			if filesz > MaxUserAddress {
				return nil, formatErrorf(at, "PT_LOAD %d: size %#x exceeds the user range", i, filesz)
			}
			cur += int64(filesz)
		}
	}
	if err := validate(p, loc.locate); err != nil {
		return nil, err
	}
	return &decodedHead{p: p, dataStart: dataStart, size: cur}, nil
}

// checkELFHeader validates the 64-byte ELF header and returns e_phnum.
func checkELFHeader(h []byte) (int, error) {
	le := binary.LittleEndian
	want := [8]byte{0x7f, 'E', 'L', 'F', elfClass64, elfData2LSB, elfVersion, elfOSABINone}
	if [8]byte(h[:8]) != want {
		return 0, formatErrorf(0, "e_ident % x is not an ELF64 little-endian SysV image (want % x)", h[:8], want[:])
	}
	for _, c := range h[8:16] {
		if c != 0 {
			return 0, formatErrorf(8, "e_ident ABI version or padding is not zero")
		}
	}
	phnum := int(le.Uint16(h[56:]))
	switch {
	case le.Uint16(h[16:]) != elfTypeCore:
		return 0, formatErrorf(16, "e_type %d, want ET_CORE (%d)", le.Uint16(h[16:]), elfTypeCore)
	case le.Uint16(h[18:]) != elfMachineX86:
		return 0, formatErrorf(18, "e_machine %d, want EM_X86_64 (%d)", le.Uint16(h[18:]), elfMachineX86)
	case le.Uint32(h[20:]) != elfVersion:
		return 0, formatErrorf(20, "e_version %d, want %d", le.Uint32(h[20:]), elfVersion)
	case le.Uint64(h[24:]) != 0:
		return 0, formatErrorf(24, "e_entry is not zero")
	case le.Uint64(h[32:]) != elfHeaderSize:
		return 0, formatErrorf(32, "e_phoff %#x, want %#x", le.Uint64(h[32:]), elfHeaderSize)
	case le.Uint64(h[40:]) != 0:
		return 0, formatErrorf(40, "e_shoff is not zero: an image has no section headers")
	case le.Uint32(h[48:]) != 0:
		return 0, formatErrorf(48, "e_flags is not zero")
	case le.Uint16(h[52:]) != elfHeaderSize:
		return 0, formatErrorf(52, "e_ehsize %d, want %d", le.Uint16(h[52:]), elfHeaderSize)
	case le.Uint16(h[54:]) != phdrSize:
		return 0, formatErrorf(54, "e_phentsize %d, want %d", le.Uint16(h[54:]), phdrSize)
	case phnum < 1 || phnum > MaxMappings+1:
		return 0, formatErrorf(56, "e_phnum %d out of range [1, %d]", phnum, MaxMappings+1)
	case le.Uint16(h[58:]) != 0 || le.Uint16(h[60:]) != 0 || le.Uint16(h[62:]) != 0:
		return 0, formatErrorf(58, "e_shentsize, e_shnum or e_shstrndx is not zero")
	}
	return phnum, nil
}

// readerAtSource reads the head from an io.ReaderAt of known size.
type readerAtSource struct {
	r    io.ReaderAt
	size int64
}

func (s *readerAtSource) read(off, n int64, what string) ([]byte, error) {
	if n > s.size-off {
		return nil, formatErrorf(off, "%s: %d bytes needed at %#x, but the image is %d bytes", what, n, off, s.size)
	}
	// Grow in steps as reads succeed, so a caller's wrong size cannot make us allocate its claim.
	b := make([]byte, 0, min(n, 64<<10))
	for int64(len(b)) < n {
		k := min(n-int64(len(b)), max(int64(len(b)), 64<<10))
		b = append(b, make([]byte, k)...)
		part := b[int64(len(b))-k:]
		if err := readFullAt(s.r, part, off+int64(len(b))-k); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, formatErrorf(off, "%s: image is shorter than its stated size %d", what, s.size)
			}
			return nil, fmt.Errorf("imgfmt: reading %s at %#x: %w", what, off, err)
		}
	}
	return b, nil
}

// Decode reads and validates the image held in r, which is size bytes long. On success every
// MapContent mapping has DataOffset set (where its bytes start in r, page-aligned) and Contents set
// to a section of r, so a thaw can map segments straight from the image file. Decode reads only the
// head of the image (headers and notes), never the segment data, and allocates in proportion to
// what it reads. A malformed image yields a *FormatError.
func Decode(r io.ReaderAt, size int64) (*Process, error) {
	if size < 0 {
		return nil, formatErrorf(0, "negative image size %d", size)
	}
	h, err := decodeHead(&readerAtSource{r: r, size: size})
	if err != nil {
		return nil, err
	}
	if h.size != size {
		return nil, formatErrorf(size, "image is %d bytes, but its segments end at %d", size, h.size)
	}
	for i := range h.p.Mappings {
		if m := &h.p.Mappings[i]; m.StoredSize() != 0 {
			m.Contents = io.NewSectionReader(r, m.DataOffset, int64(m.StoredSize()))
		}
	}
	return h.p, nil
}
