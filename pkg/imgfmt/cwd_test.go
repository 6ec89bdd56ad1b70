package imgfmt

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// These tests cover the cwd note (format 1.1): round trip, the revision the encoder picks, and
// that format 1.0 images still decode.

func TestCwdRoundTrip(t *testing.T) {
	for _, path := range []string{"/", "/data/work", "/gone (deleted)", "/" + strings.Repeat("d", MaxPathLen-1)} {
		p := minimalProcess()
		p.Cwd = &FileHandle{Path: path, DevMajor: 1, DevMinor: 2, Ino: 3, Mode: 0o40700, Size: 4, MtimeNano: 5, CtimeNano: 6}
		img := encodeToBytes(t, p)
		q, err := Decode(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			t.Fatalf("cwd %.20q: Decode: %v", path, err)
		}
		if !reflect.DeepEqual(q.Cwd, p.Cwd) {
			t.Errorf("cwd %.20q: decoded %+v, want %+v", path, q.Cwd, p.Cwd)
		}
		d, err := NewStreamDecoder(bytes.NewReader(img))
		if err != nil {
			t.Fatalf("cwd %.20q: NewStreamDecoder: %v", path, err)
		}
		if got := d.Process().Cwd; !reflect.DeepEqual(got, p.Cwd) {
			t.Errorf("cwd %.20q: stream decoded %+v, want %+v", path, got, p.Cwd)
		}
		if s := viewOf(q); s.Format != "1.1" || s.VM.Cwd != path {
			t.Errorf("cwd %.20q: summary format %s cwd %q", path, s.Format, s.VM.Cwd)
		}
	}
}

// TestCwdRevision checks that the encoder writes revision 1.0 without a cwd and 1.1 with one, and
// that the decoder rejects the other combinations (the format stays canonical).
func TestCwdRevision(t *testing.T) {
	without := encodeToBytes(t, minimalProcess())
	p := minimalProcess()
	p.Cwd = &FileHandle{Path: "/w", Mode: 0o40755}
	with := encodeToBytes(t, p)
	minorAt := func(img []byte) int {
		i := bytes.Index(img, []byte(OwnerRunscCkpt+"\x00"))
		if i < 0 {
			t.Fatal("no runsc-ckpt note")
		}
		return pad4(i+len(OwnerRunscCkpt)+1) + 8 // descriptor: layout u32, major u32, minor u32
	}
	if m := without[minorAt(without)]; m != 0 {
		t.Errorf("image without cwd has revision %d, want 0", m)
	}
	if m := with[minorAt(with)]; m != 1 {
		t.Errorf("image with cwd has revision %d, want 1", m)
	}
	for _, bad := range [][]byte{without, with} {
		b := bytes.Clone(bad)
		b[minorAt(b)] ^= 1
		_, err := Decode(bytes.NewReader(b), int64(len(b)))
		var fe *FormatError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), "format revision") {
			t.Errorf("revision flipped: Decode error %v, want a FormatError about the revision", err)
		}
	}
	for _, c := range []struct {
		name string
		h    FileHandle
	}{{"relative path", FileHandle{Path: "data", Mode: 0o40755}}, {"empty path", FileHandle{Mode: 0o40755}}} {
		q := minimalProcess()
		q.Cwd = &c.h
		if err := Validate(q); err == nil {
			t.Errorf("%s: Validate accepted cwd %+v", c.name, c.h)
		}
	}
}

// TestFormat10ImageDecodes decodes golden-basic-1.0.img, written by the format 1.0 encoder before
// the cwd note existed: it must still decode, to the same process without a working directory,
// and re-encode to the same bytes.
func TestFormat10ImageDecodes(t *testing.T) {
	old, err := os.ReadFile("testdata/golden-basic-1.0.img")
	if err != nil {
		t.Fatal(err)
	}
	q, err := Decode(bytes.NewReader(old), int64(len(old)))
	if err != nil {
		t.Fatalf("Decode of a 1.0 image: %v", err)
	}
	want := testProcess()
	want.Cwd = nil
	if !reflect.DeepEqual(stripData(q), stripData(want)) {
		t.Fatal("the 1.0 image decodes to a different process")
	}
	if re := encodeToBytes(t, want); !bytes.Equal(re, old) {
		t.Error("a process without cwd no longer encodes to its 1.0 image")
	}
	if s := viewOf(q); s.Format != "1.0" || s.VM.Cwd != "" {
		t.Errorf("summary of the 1.0 image: format %s cwd %q", s.Format, s.VM.Cwd)
	}
}
