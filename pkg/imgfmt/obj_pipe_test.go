package imgfmt

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// pipeProcess returns a process with a named FIFO object on fds 7 (read end) and 8 (write end)
// holding some bytes, and an anonymous pipe on fd 9 (read end only) with no data.
func pipeProcess() *Process {
	p := minimalProcess()
	fifo := &FileHandle{Path: "/tmp/fifo", Mode: 0o010644}
	p.Files = append(p.Files,
		File{FD: 7, Kind: FileFIFO, StatusFlags: 0o4000, Offset: -1, Desc: "/tmp/fifo", Handle: fifo},
		File{FD: 8, Kind: FileFIFO, StatusFlags: 1, Offset: -1, Desc: "/tmp/fifo", Handle: fifo},
		File{FD: 9, Kind: FileFIFO, Offset: -1, Desc: "pipe:[3]"})
	p.Objects = []Object{
		{ID: 1, Key: 0x77, FDs: []ObjectFD{{FD: 7}, {FD: 8, Desc: 1}}, Body: &PipeObject{Named: true, Capacity: 65536, Data: []byte("hello, pipe")}},
		{ID: 2, Key: 0x79, FDs: []ObjectFD{{FD: 9}}, Body: &PipeObject{Capacity: 4096}},
	}
	return p
}

func TestPipeObjectRoundTrip(t *testing.T) {
	p := pipeProcess()
	q, _ := objectRoundTrip(t, p)
	s := viewOf(q)
	if len(s.Objects) != 2 || s.Objects[0].Kind != "pipe" || s.Objects[0].Detail != "named, capacity 65536, 11 bytes buffered" ||
		s.Objects[1].Detail != "anonymous, capacity 4096, 0 bytes buffered" {
		t.Errorf("summary objects %+v", s.Objects)
	}
}

// TestPipeObjectChecks: bodies the encoder (and so the decoder, which runs the same validation)
// must refuse.
func TestPipeObjectChecks(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		mod        func(p *Process)
	}{
		{"capacity too small", "capacity 100 outside", func(p *Process) { p.Objects[1].Body.(*PipeObject).Capacity = 100 }},
		{"capacity too large", "outside", func(p *Process) { p.Objects[1].Body.(*PipeObject).Capacity = MaxObjectData + 1 }},
		{"data over capacity", "4097 bytes buffered exceed the capacity 4096", func(p *Process) {
			p.Objects[1].Body.(*PipeObject).Data = make([]byte, 4097)
		}},
		{"not a pipe fd", "fd 9 is not a pipe", func(p *Process) { p.Files[len(p.Files)-1].Kind = FileRegular }},
		{"named without handle", "fd 7 of a named FIFO has no handle", func(p *Process) { p.Files[len(p.Files)-3].Handle = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pipeProcess()
			tc.mod(p)
			var fe *FormatError
			err := Encode(new(bytes.Buffer), p)
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "pipe") {
				t.Fatalf("Encode: %v, want a FormatError containing %q", err, tc.want)
			}
		})
	}
}

// TestPipeObjectDecodeErrors patches the body of an encoded pipe note.
func TestPipeObjectDecodeErrors(t *testing.T) {
	p := minimalProcess()
	p.Files = append(p.Files, File{FD: 9, Kind: FileFIFO, Offset: -1, Desc: "pipe:[3]"})
	p.Objects = []Object{{ID: 1, FDs: []ObjectFD{{FD: 9}}, Body: &PipeObject{Capacity: 4096, Data: []byte("abcd")}}}
	img := encodeToBytes(t, p)
	at := lastOwnNoteDesc(img)
	body := objectFixedSize + objectFDSize
	for _, tc := range []struct {
		name string
		off  int
		val  byte
		want string
	}{
		{"flags", body, 2, "unknown flags"},
		{"data length", body + 8, 5, "5 data bytes do not fit"},
		{"data length huge", body + 11, 0x7f, "do not fit"},
		{"reserved", body + 12, 1, "reserved"},
		{"capacity", body + 5, 0, "capacity 0 outside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantByteDecodeError(t, img, at+tc.off, tc.val, tc.want)
		})
	}
}
