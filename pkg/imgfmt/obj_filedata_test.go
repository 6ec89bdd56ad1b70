package imgfmt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// fileDataProcess returns a process with a memfd on fds 5 and 6 (two descriptions), mapped shared
// by an object mapping, and shared anonymous memory mapped by another.
func fileDataProcess() *Process {
	p := minimalProcess()
	p.Files = append(p.Files,
		File{FD: 5, Kind: FileRegular, StatusFlags: 2, Offset: 3, Desc: "/memfd:buf (deleted)"},
		File{FD: 6, Kind: FileRegular, StatusFlags: 0, Offset: 0, Desc: "/memfd:buf (deleted)"})
	p.Mappings = append(p.Mappings,
		Mapping{Start: 0x7f0000000000, End: 0x7f0000002000, Prot: ProtRead | ProtWrite, Shared: true, Kind: MapObject, Name: "/memfd:buf (deleted)", FileOffset: PageSize},
		Mapping{Start: 0x7f0000010000, End: 0x7f0000011000, Prot: ProtRead, Shared: true, Kind: MapObject, Name: "/dev/zero (deleted)"})
	p.Objects = []Object{
		{ID: 1, Key: 0x55, FDs: []ObjectFD{{FD: 5, Desc: 0}, {FD: 6, Desc: 1}}, Body: &FileDataObject{
			Memfd: true, Mode: 0o777, Seals: SealGrow | SealShrink, Size: 3*PageSize + 5, Name: "buf",
			Runs: []DataRun{{Offset: 0, Data: bytes.Repeat([]byte{'a'}, PageSize)}, {Offset: 3 * PageSize, Data: []byte("tail!")}},
			Maps: []uint64{0x7f0000000000},
		}},
		{ID: 2, Body: &FileDataObject{SharedAnon: true, Mode: 0o600, Size: PageSize, Maps: []uint64{0x7f0000010000}}},
	}
	return p
}

func TestFileDataRoundTrip(t *testing.T) {
	p := fileDataProcess()
	img := encodeToBytes(t, p)
	q, err := Decode(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if !reflect.DeepEqual(q.Objects, p.Objects) {
		t.Errorf("decoded objects %+v, want %+v", q.Objects, p.Objects)
	}
	if q.Mappings[1].Kind != MapObject || q.Mappings[1].FileOffset != PageSize || q.Mappings[1].Contents != nil {
		t.Errorf("object mapping decoded as %+v", q.Mappings[1])
	}
	if got := q.MapObjectOwners(); !reflect.DeepEqual(got, map[uint64]int{0x7f0000000000: 0, 0x7f0000010000: 1}) {
		t.Errorf("MapObjectOwners = %v", got)
	}
	d, err := NewStreamDecoder(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("NewStreamDecoder: %v", err)
	}
	if got := d.Process().Objects; !reflect.DeepEqual(got, p.Objects) {
		t.Errorf("stream decoded objects %+v, want %+v", got, p.Objects)
	}
	s := viewOf(q)
	if len(s.Objects) != 2 || s.Objects[0].Kind != "file-data" || !strings.Contains(s.Objects[0].Detail, `memfd "buf"`) ||
		!strings.Contains(s.Objects[1].Detail, "shared anonymous") || q.Mappings[1].Kind != MapObject {
		t.Errorf("summary objects %+v mappings %+v", s.Objects, q.Mappings)
	}
	// The JSON of an object's state (inspect --json shows it) names the runs by offset and
	// length, never the bytes.
	js, err := json.Marshal(q.Objects[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(js), `{"offset":12288,"length":5}`) || strings.Contains(string(js), "dGFpbCE") {
		t.Errorf("JSON summary: %s", js)
	}
}

// TestFileDataChecks feeds invalid file-data objects to the encoder: each must be refused with a
// FormatError naming the problem.
func TestFileDataChecks(t *testing.T) {
	body := func(p *Process) *FileDataObject { return p.Objects[0].Body.(*FileDataObject) }
	for _, tc := range []struct {
		name, want string
		mod        func(p *Process)
	}{
		{"mode", "outside 07777", func(p *Process) { body(p).Mode = 0o100644 }},
		{"seals", "unknown seals", func(p *Process) { body(p).Seals = 0x40 }},
		{"seals not memfd", "not a memfd", func(p *Process) { body(p).Memfd = false }},
		{"memfd name", "memfd name longer", func(p *Process) { body(p).Name = strings.Repeat("n", 250) }},
		{"memfd and anon", "both", func(p *Process) { body(p).SharedAnon = true }},
		{"anon with fds", "neither fds nor a name", func(p *Process) { body(p).Memfd, body(p).Seals, body(p).SharedAnon = false, 0, true }},
		{"run unaligned", "not page-aligned", func(p *Process) { body(p).Runs[1].Offset = 3*PageSize + 1 }},
		{"run empty", "run 1 is empty", func(p *Process) { body(p).Runs[1].Data = nil }},
		{"run overlap", "overlaps", func(p *Process) { body(p).Runs[1].Offset = 0 }},
		{"run beyond size", "beyond the size", func(p *Process) { body(p).Size = 3 * PageSize }},
		{"partial page", "partial page", func(p *Process) { body(p).Size = 5 * PageSize }},
		{"size", "exceeds", func(p *Process) { body(p).Size = 1 << 63 }},
		{"map missing", "no object mapping starts at", func(p *Process) { body(p).Maps[0] = 0x7f0000001000 }},
		{"map twice", "also belongs to object 1", func(p *Process) { p.Objects[1].Body.(*FileDataObject).Maps[0] = 0x7f0000000000 }},
		{"map unclaimed", "belongs to no object", func(p *Process) { body(p).Maps = nil }},
		{"write sealed", "write-sealed", func(p *Process) { body(p).Seals |= SealWrite }},
		{"fd kind", "not a regular file", func(p *Process) { p.Files[len(p.Files)-1].Kind = FileFIFO }},
		{"object mapping private", "is shared and has no file handle", func(p *Process) { p.Mappings[1].Shared = false }},
		{"object mapping offset", "file offset 0x1 is not page-aligned", func(p *Process) { p.Mappings[1].FileOffset = 1 }},
		{"too much data", "data exceeds", func(p *Process) {
			body(p).Size = MaxObjectData + PageSize
			body(p).Runs = []DataRun{{Offset: 0, Data: make([]byte, MaxObjectData+PageSize)}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := fileDataProcess()
			tc.mod(p)
			wantEncodeError(t, p, tc.want)
		})
	}
}

// TestFileDataDecodeErrors patches the encoded body of the first object: counts and lengths that
// do not fit, unknown flags and reserved bytes are format errors, never a panic or an allocation
// the input does not pay for.
func TestFileDataDecodeErrors(t *testing.T) {
	img := encodeToBytes(t, fileDataProcess())
	// The first object note's descriptor follows the second-to-last "RUNSC-CKPT\0" owner.
	owner := []byte(OwnerRunscCkpt + "\x00")
	last := bytes.LastIndex(img, owner)
	at := bytes.LastIndex(img[:last], owner) + pad4(len(owner))
	body := at + objectFixedSize + 2*objectFDSize
	put32 := func(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }
	put64 := func(b []byte, off int, v uint64) { binary.LittleEndian.PutUint64(b[off:], v) }
	for _, tc := range []struct {
		name  string
		patch func(b []byte)
		want  string
	}{
		{"flags", func(b []byte) { put32(b, body, 4) }, "unknown flags"},
		{"reserved", func(b []byte) { put32(b, body+20, 1) }, "reserved"},
		{"runs count", func(b []byte) { put32(b, body+12, 1<<30) }, "do not fit in the note"},
		{"maps count", func(b []byte) { put32(b, body+16, 1<<30) }, "do not fit in the note"},
		{"run length huge", func(b []byte) { put64(b, body+32+8, 1<<40) }, "carry more than"},
		{"run length beyond note", func(b []byte) { put64(b, body+32+8, MaxObjectData/2) }, "do not fit in the note"},
		{"mode", func(b []byte) { put32(b, body+4, 0o170000) }, "outside 07777"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(img)
			tc.patch(b)
			wantDecodeError(t, b, tc.want)
			var fe *FormatError
			if _, err := NewStreamDecoder(bytes.NewReader(b)); !errors.As(err, &fe) {
				t.Fatalf("NewStreamDecoder: %v, want a FormatError", err)
			}
		})
	}
}
