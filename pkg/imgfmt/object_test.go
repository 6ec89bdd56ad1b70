package imgfmt

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// These tests cover the generic part of the object notes (format 1.2): round trip through both
// decoders, the revision, and the checks every object gets whatever its kind.

// objectProcess returns a process with an eventfd object on fds 5 and 6 (one description).
func objectProcess() *Process {
	p := minimalProcess()
	p.Files = append(p.Files,
		File{FD: 5, Kind: FileEventFD, StatusFlags: 2, Offset: -1, Desc: "anon_inode:[eventfd]"},
		File{FD: 6, Kind: FileEventFD, StatusFlags: 2, Offset: -1, Desc: "anon_inode:[eventfd]"})
	p.Objects = []Object{{ID: 1, Key: 0x1234, FDs: []ObjectFD{{FD: 5}, {FD: 6}}, Body: &EventFDObject{Count: 7, Semaphore: true}}}
	return p
}

func TestObjectRoundTrip(t *testing.T) {
	p := objectProcess()
	q, _ := objectRoundTrip(t, p)
	if s := viewOf(q); s.Format != "1.2" || len(s.Objects) != 1 || s.Objects[0].Kind != "eventfd" {
		t.Errorf("summary format %s objects %+v", s.Format, s.Objects)
	}
	if o, desc := q.ObjectOf(6); o == nil || o.ID != 1 || desc != 0 {
		t.Errorf("ObjectOf(6) = %v, %d", o, desc)
	}
}

// TestObjectChecks feeds invalid object lists to the encoder and, patched into a valid image, to
// the decoder: both must refuse them with a FormatError naming the object.
func TestObjectChecks(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		mod        func(p *Process)
	}{
		{"id", "id 2, want 1", func(p *Process) { p.Objects[0].ID = 2 }},
		{"missing fd", "fd 9 is not an fd of the process", func(p *Process) { p.Objects[0].FDs[1].FD = 9 }},
		{"unsorted fds", "not above the previous fd", func(p *Process) { p.Objects[0].FDs[0].FD, p.Objects[0].FDs[1].FD = 6, 5 }},
		{"desc range", "description 5 out of range", func(p *Process) { p.Objects[0].FDs[1].Desc = 5 }},
		{"desc gap", "not numbered densely", func(p *Process) { p.Objects[0].FDs[0].Desc = 1; p.Objects[0].FDs[1].Desc = 1 }},
		{"fd twice", "fd 6 also belongs to object 1", func(p *Process) {
			p.Objects = append(p.Objects, Object{ID: 2, FDs: []ObjectFD{{FD: 6}}, Body: &EventFDObject{}})
		}},
		{"count", "count exceeds", func(p *Process) { p.Objects[0].Body = &EventFDObject{Count: ^uint64(0)} }},
		{"wrong fd kind", "fd is not an eventfd", func(p *Process) { p.Files[len(p.Files)-1].Kind = FileFIFO }},
		{"no body", "no body", func(p *Process) { p.Objects[0].Body = nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := objectProcess()
			tc.mod(p)
			var fe *FormatError
			err := Encode(new(bytes.Buffer), p)
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "object") {
				t.Fatalf("Encode: %v, want a FormatError containing %q", err, tc.want)
			}
		})
	}
}

// TestObjectDecodeErrors patches encoded object notes: an unknown kind, a wrong fd count and
// reserved bits must all be format errors at the note, never a panic or a silent default.
func TestObjectDecodeErrors(t *testing.T) {
	img := encodeToBytes(t, objectProcess())
	// The object note's descriptor follows the last "RUNSC-CKPT\0" owner in the image.
	at := lastOwnNoteDesc(img)
	for _, tc := range []struct {
		name string
		off  int
		val  byte
		want string
	}{
		{"unknown kind", 4, 99, "unknown object kind 99"},
		{"fd count", 12, 200, "fds do not fit"},
		{"eventfd flags", objectFixedSize + 2*objectFDSize + 8, 2, "unknown flags"},
		{"eventfd reserved", objectFixedSize + 2*objectFDSize + 12, 1, "reserved"},
		{"layout", 0, 9, "layout version 9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantByteDecodeError(t, img, at+tc.off, tc.val, tc.want)
		})
	}
}

// objectRoundTrip encodes p, decodes the image with both decoders, fails t unless each gives
// back p's objects, and returns the process the ReaderAt decoder made and the image.
func objectRoundTrip(t *testing.T, p *Process) (*Process, []byte) {
	t.Helper()
	img := encodeToBytes(t, p)
	q, err := Decode(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if !reflect.DeepEqual(q.Objects, p.Objects) {
		t.Errorf("decoded objects %+v, want %+v", q.Objects, p.Objects)
	}
	d, err := NewStreamDecoder(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("NewStreamDecoder: %v", err)
	}
	if got := d.Process().Objects; !reflect.DeepEqual(got, p.Objects) {
		t.Errorf("stream decoded objects %+v, want %+v", got, p.Objects)
	}
	return q, img
}

// wantEncodeError fails t unless encoding p fails with a FormatError whose text contains want.
func wantEncodeError(t *testing.T, p *Process, want string) {
	t.Helper()
	var fe *FormatError
	if err := Encode(new(bytes.Buffer), p); !errors.As(err, &fe) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Encode: %v, want a FormatError containing %q", err, want)
	}
}

// lastOwnNoteDesc returns the offset in img of the descriptor of its last runsc-ckpt note (in an
// image with objects, the last object's).
func lastOwnNoteDesc(img []byte) int {
	return bytes.LastIndex(img, []byte(OwnerRunscCkpt+"\x00")) + pad4(len(OwnerRunscCkpt)+1)
}

// wantByteDecodeError fails t unless img, with its byte at off set to val, fails to decode with a
// FormatError whose text contains want. img itself is left as it is.
func wantByteDecodeError(t *testing.T, img []byte, off int, val byte, want string) {
	t.Helper()
	b := bytes.Clone(img)
	b[off] = val
	wantDecodeError(t, b, want)
}

// wantDecodeError fails t unless decoding img fails with a FormatError whose text contains want.
func wantDecodeError(t *testing.T, img []byte, want string) {
	t.Helper()
	var fe *FormatError
	if _, err := Decode(bytes.NewReader(img), int64(len(img))); !errors.As(err, &fe) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Decode: %v, want a FormatError containing %q", err, want)
	}
}
