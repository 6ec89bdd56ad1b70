package test

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
)

// An image mutator for the hostile-image catalogue (hostile_test.go): it crafts images from a real
// one. Changes the codec can express go through imgfmt (decode, change the Process, encode);
// those it refuses to encode (overlapping segments, addresses outside the user range, offsets past
// the end, counts larger than the image) are made by patching the encoded bytes where the format
// (docs/image-format.md) puts each field, keeping everything else consistent so that the decoder's
// check of exactly that property is what refuses the image.

// Offsets into the ELF header, a program header and the runsc-ckpt mapping note.
const (
	ehPhnum     = 56 // e_phnum u16
	phdrLen     = 56
	phOffset    = 8  // p_offset u64
	phVaddr     = 16 // p_vaddr u64
	phFilesz    = 32 // p_filesz u64
	phMemsz     = 40 // p_memsz u64
	mapNoteType = 0x52430007
	mapStart    = 16 // mapping note: start u64
	mapEnd      = 24 // mapping note: end u64
	procNoteTyp = 0x52430002
	procNgroups = 52 // process note: ngroups u32
)

// rawImage is an encoded image with the positions of what the mutator patches.
type rawImage struct {
	b        []byte
	phoff    int   // offset of the program headers
	mapNotes []int // descriptor offset of each mapping note, in mapping order
	procNote int   // descriptor offset of the process note
}

// encodeRaw encodes p and indexes the result.
func encodeRaw(p *imgfmt.Process) (*rawImage, error) {
	var b bytes.Buffer
	if err := imgfmt.Encode(&b, p); err != nil {
		return nil, fmt.Errorf("encoding: %w", err)
	}
	return parseRaw(b.Bytes())
}

// parseRaw indexes an encoded image (which must be well formed).
func parseRaw(b []byte) (*rawImage, error) {
	le := binary.LittleEndian
	r := &rawImage{b: b, phoff: int(le.Uint64(b[32:]))}
	noteOff, noteLen := int(le.Uint64(b[r.phoff+phOffset:])), int(le.Uint64(b[r.phoff+phFilesz:]))
	for at := noteOff; at < noteOff+noteLen; {
		namesz, descsz, typ := int(le.Uint32(b[at:])), int(le.Uint32(b[at+4:])), le.Uint32(b[at+8:])
		name := string(bytes.TrimRight(b[at+12:at+12+namesz], "\x00"))
		desc := at + 12 + (namesz+3)&^3
		if name == "RUNSC-CKPT" {
			switch typ {
			case mapNoteType:
				r.mapNotes = append(r.mapNotes, desc)
			case procNoteTyp:
				r.procNote = desc
			}
		}
		at = desc + (descsz+3)&^3
	}
	if r.procNote == 0 {
		return nil, fmt.Errorf("no process note in the image")
	}
	return r, nil
}

// phdr returns the offset of program header i (0 is PT_NOTE, i+1 the PT_LOAD of mapping i).
func (r *rawImage) phdr(i int) int { return r.phoff + i*phdrLen }

// setRange moves mapping i (one without stored bytes: MapZero, or a reference without header
// page) to [start, end), in its PT_LOAD and its mapping note alike.
func (r *rawImage) setRange(i int, start, end uint64) {
	le := binary.LittleEndian
	ph := r.phdr(i + 1)
	le.PutUint64(r.b[ph+phVaddr:], start)
	le.PutUint64(r.b[ph+phMemsz:], end-start)
	le.PutUint64(r.b[r.mapNotes[i]+mapStart:], start)
	le.PutUint64(r.b[r.mapNotes[i]+mapEnd:], end)
}

// setLoadOffset sets the p_offset of mapping i's PT_LOAD.
func (r *rawImage) setLoadOffset(i int, off uint64) {
	binary.LittleEndian.PutUint64(r.b[r.phdr(i+1)+phOffset:], off)
}

// setPhnum sets e_phnum.
func (r *rawImage) setPhnum(n uint16) { binary.LittleEndian.PutUint16(r.b[ehPhnum:], n) }

// setNoteSize sets the PT_NOTE's p_filesz.
func (r *rawImage) setNoteSize(n uint64) { binary.LittleEndian.PutUint64(r.b[r.phdr(0)+phFilesz:], n) }

// setNgroups sets the process note's ngroups without adding the groups.
func (r *rawImage) setNgroups(n uint32) {
	binary.LittleEndian.PutUint32(r.b[r.procNote+procNgroups:], n)
}

// insertMapping inserts m into p's mappings at its place in address order.
func insertMapping(p *imgfmt.Process, m imgfmt.Mapping) int {
	i := 0
	for i < len(p.Mappings) && p.Mappings[i].Start < m.Start {
		i++
	}
	p.Mappings = append(p.Mappings[:i], append([]imgfmt.Mapping{m}, p.Mappings[i:]...)...)
	return i
}

// freePage returns the start of a free page of p's address space at or below want whose next
// page is free too, searching downwards; p's vvar/vDSO counts as taken.
func freePage(p *imgfmt.Process, want uint64) uint64 {
	taken := func(a uint64) bool {
		if a >= p.VM.VDSOBase-imgfmt.PageSize && a < p.VM.VDSOBase+p.VM.VDSOSize {
			return true
		}
		for _, m := range p.Mappings {
			if a >= m.Start && a < m.End {
				return true
			}
		}
		return false
	}
	for a := want; a >= imgfmt.PageSize; a -= imgfmt.PageSize {
		if !taken(a) && !taken(a+imgfmt.PageSize) {
			return a
		}
	}
	return 0
}
