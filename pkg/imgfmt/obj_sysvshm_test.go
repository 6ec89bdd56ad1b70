package imgfmt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// sysVShmProcess returns a process that attaches one SysV segment twice (object mappings).
func sysVShmProcess() *Process {
	p := minimalProcess()
	p.Mappings = append(p.Mappings,
		Mapping{Start: 0x7f0000000000, End: 0x7f0000002000, Prot: ProtRead | ProtWrite, Shared: true, Kind: MapObject, Name: "SYSV00001234"},
		Mapping{Start: 0x7f0000010000, End: 0x7f0000012000, Prot: ProtRead, Shared: true, Kind: MapObject, Name: "SYSV00001234"})
	p.Objects = []Object{{ID: 1, Body: &SysVShmObject{Key: 0x1234, ID: 3, Mode: 0o640, Removed: true, Size: 5000,
		Runs: []DataRun{{Offset: PageSize, Data: []byte("tail")}}, Maps: []uint64{0x7f0000000000, 0x7f0000010000}}}}
	p.Objects[0].Body.(*SysVShmObject).Runs[0].Data = bytes.Repeat([]byte("t"), 5000-PageSize)
	return p
}

func TestSysVShmRoundTrip(t *testing.T) {
	p := sysVShmProcess()
	q, _ := objectRoundTrip(t, p)
	s := viewOf(q)
	if len(s.Objects) != 1 || s.Objects[0].Kind != "sysv-shm" || !strings.Contains(s.Objects[0].Detail, "key 0x1234, id 3, mode 0640, size 5000, removed") {
		t.Errorf("summary objects %+v", s.Objects)
	}
}

func TestSysVShmChecks(t *testing.T) {
	body := func(p *Process) *SysVShmObject { return p.Objects[0].Body.(*SysVShmObject) }
	for _, tc := range []struct {
		name, want string
		mod        func(p *Process)
	}{
		{"id", "negative id", func(p *Process) { body(p).ID = -1 }},
		{"mode", "outside 0777", func(p *Process) { body(p).Mode = 0o1777 }},
		{"size", "size 0 out of range", func(p *Process) { body(p).Size = 0; body(p).Runs = nil }},
		{"not attached", "does not attach", func(p *Process) { body(p).Maps = nil }},
		{"run beyond", "beyond the size", func(p *Process) { body(p).Size = PageSize }},
		{"map missing", "no object mapping starts at", func(p *Process) { body(p).Maps[1] = 0x7f0000011000 }},
		{"fds", "has no fds", func(p *Process) {
			p.Files = append(p.Files, File{FD: 5, Kind: FileRegular, Offset: 0, Desc: "x"})
			p.Objects[0].FDs = []ObjectFD{{FD: 5}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := sysVShmProcess()
			tc.mod(p)
			wantEncodeError(t, p, tc.want)
		})
	}
}

func TestSysVShmDecodeErrors(t *testing.T) {
	img := encodeToBytes(t, sysVShmProcess())
	at := lastOwnNoteDesc(img)
	body := at + objectFixedSize
	for _, tc := range []struct {
		name  string
		patch func(b []byte)
		want  string
	}{
		{"flags", func(b []byte) { binary.LittleEndian.PutUint32(b[body+12:], 2) }, "unknown flags"},
		{"runs count", func(b []byte) { binary.LittleEndian.PutUint32(b[body+24:], 1<<31) }, "do not fit in the note"},
		{"maps count", func(b []byte) { binary.LittleEndian.PutUint32(b[body+28:], 1<<20) }, "do not fit in the note"},
		{"run length", func(b []byte) { binary.LittleEndian.PutUint64(b[body+32+8:], 1<<40) }, "carry more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(img)
			tc.patch(b)
			var fe *FormatError
			if _, err := Decode(bytes.NewReader(b), int64(len(b))); !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode: %v, want a FormatError containing %q", err, tc.want)
			}
		})
	}
}
