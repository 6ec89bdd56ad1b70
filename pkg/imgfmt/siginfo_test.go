package imgfmt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// siginfoDesc returns the NT_SIGINFO descriptor of an encoded image.
func siginfoDesc(t *testing.T, img []byte) []byte {
	t.Helper()
	// The CORE owner plus type NT_SIGINFO, then the 128-byte descriptor.
	hdr := make([]byte, 12)
	binary.LittleEndian.PutUint32(hdr[0:], 5)
	binary.LittleEndian.PutUint32(hdr[4:], siginfoSize)
	binary.LittleEndian.PutUint32(hdr[8:], ntSiginfo)
	i := bytes.Index(img, append(hdr, "CORE\x00\x00\x00\x00"...))
	if i < 0 {
		t.Fatal("no NT_SIGINFO note in the image")
	}
	return img[i+20 : i+20+siginfoSize]
}

// TestSigInfoFaultAddress: a kernel-raised fault signal stores si_addr at byte 16 (where a sent
// signal has the sender's pid and uid), and both forms round-trip.
func TestSigInfoFaultAddress(t *testing.T) {
	for _, tc := range []struct {
		name string
		si   SigInfo
		at16 uint64
	}{
		{"SIGSEGV SEGV_MAPERR", SigInfo{Signo: 11, Code: 1, Addr: 0x10}, 0x10},
		{"SIGBUS BUS_ADRERR", SigInfo{Signo: 7, Code: 2, Addr: 0x7f0000001000}, 0x7f0000001000},
		{"SIGSEGV sent by tgkill", SigInfo{Signo: 11, Code: -6, PID: 7, UID: 1000}, 7 | 1000<<32},
		{"SIGABRT", SigInfo{Signo: 6, Code: -6, PID: 3, UID: 0}, 3},
		{"SIGTRAP SI_KERNEL", SigInfo{Signo: 5, Code: 0x80}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testProcess()
			si := tc.si
			p.SigInfo = &si
			img := encodeToBytes(t, p)
			d := siginfoDesc(t, img)
			if got := binary.LittleEndian.Uint64(d[16:]); got != tc.at16 {
				t.Errorf("bytes 16..23 of siginfo_t = %#x, want %#x", got, tc.at16)
			}
			q, err := Decode(bytes.NewReader(img), int64(len(img)))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(q.SigInfo, p.SigInfo) {
				t.Errorf("siginfo after a round trip = %+v, want %+v", q.SigInfo, p.SigInfo)
			}
		})
	}
}

// TestSigInfoRejectsMixedUnion: a siginfo with both a sender and a fault address, or an address
// where the union holds a sender, has no canonical encoding and is refused.
func TestSigInfoRejectsMixedUnion(t *testing.T) {
	for _, si := range []SigInfo{
		{Signo: 11, Code: 1, Addr: 0x10, PID: 1},
		{Signo: 11, Code: 0, Addr: 0x10},
		{Signo: 6, Code: -6, Addr: 0x10},
	} {
		p := testProcess()
		si := si
		p.SigInfo = &si
		if err := Encode(&bytes.Buffer{}, p); err == nil {
			t.Errorf("Encode accepted siginfo %+v", si)
		}
	}
}

// TestCoreDumpLayout: a core dump (format 1.3) puts NT_SIGINFO right after thread 0's notes and the
// signal into every NT_PRSTATUS, as Linux does, and round-trips; the flag and the layout must agree.
func TestCoreDumpLayout(t *testing.T) {
	p := testProcess()
	if len(p.Threads) < 2 {
		t.Fatalf("the test process has %d threads, want at least 2", len(p.Threads))
	}
	p.SigInfo = &SigInfo{Signo: 11, Code: 1, Addr: 0x10}
	p.CoreDump = true
	img := encodeToBytes(t, p)
	q, err := Decode(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if !q.CoreDump || !reflect.DeepEqual(q.SigInfo, p.SigInfo) {
		t.Fatalf("decoded CoreDump %v, siginfo %+v; want true, %+v", q.CoreDump, q.SigInfo, p.SigInfo)
	}
	// Note order: NT_SIGINFO between the first and the second NT_PRSTATUS.
	prstatus := func(from int) int {
		h := make([]byte, 12)
		binary.LittleEndian.PutUint32(h[0:], 5)
		binary.LittleEndian.PutUint32(h[4:], prstatusSize)
		binary.LittleEndian.PutUint32(h[8:], ntPrstatus)
		i := bytes.Index(img[from:], h)
		if i < 0 {
			t.Fatal("NT_PRSTATUS not found")
		}
		return from + i
	}
	first := prstatus(0)
	second := prstatus(first + 1)
	si := bytes.Index(img, siginfoDesc(t, img))
	if si < first || si > second {
		t.Errorf("NT_SIGINFO at %#x, want between the NT_PRSTATUS notes at %#x and %#x", si, first, second)
	}
	for _, off := range []int{first, second} {
		if cursig := binary.LittleEndian.Uint16(img[off+20+12:]); cursig != 11 {
			t.Errorf("NT_PRSTATUS at %#x: pr_cursig %d, want 11", off, cursig)
		}
	}
	if minor := binary.LittleEndian.Uint32(versionDesc(t, img)[8:]); minor != 3 {
		t.Errorf("format minor %d, want 3", minor)
	}

	// The flag cleared in place: the layout no longer matches.
	bad := bytes.Clone(img)
	binary.LittleEndian.PutUint32(versionDesc(t, bad)[12:], 0)
	if _, err := Decode(bytes.NewReader(bad), int64(len(bad))); err == nil {
		t.Error("Decode accepted a core-dump layout without the core-dump flag")
	}
	// A core dump without its signal cannot be encoded.
	p.SigInfo = nil
	if err := Encode(&bytes.Buffer{}, p); err == nil {
		t.Error("Encode accepted a core dump without NT_SIGINFO")
	}
}

// versionDesc returns the descriptor of the version note of an encoded image.
func versionDesc(t *testing.T, img []byte) []byte {
	t.Helper()
	owner := append([]byte(OwnerRunscCkpt), 0)
	h := make([]byte, 12)
	binary.LittleEndian.PutUint32(h[0:], uint32(len(owner)))
	binary.LittleEndian.PutUint32(h[8:], NoteVersion)
	for i := 0; i+12 <= len(img); i += 4 {
		if bytes.Equal(img[i:i+4], h[:4]) && bytes.Equal(img[i+8:i+12], h[8:]) && bytes.HasPrefix(img[i+12:], owner) {
			return img[i+12+pad4(len(owner)):]
		}
	}
	t.Fatal("no version note")
	return nil
}

// TestHeaderPage: a reference mapping with HeaderPage stores exactly its first page (p_filesz one
// page, the bytes at the canonical offset), is format 1.3, round-trips through both decoders, and
// is refused on other kinds or at a nonzero file offset.
func TestHeaderPage(t *testing.T) {
	p := testProcess()
	ref := -1
	for i := range p.Mappings {
		if p.Mappings[i].Kind == MapReference && p.Mappings[i].FileOffset == 0 {
			ref = i
			break
		}
	}
	if ref < 0 {
		t.Fatal("the test process has no reference mapping at file offset 0")
	}
	page := bytes.Repeat([]byte{0x7f, 'E', 'L', 'F'}, PageSize/4)
	p.Mappings[ref].HeaderPage = true
	p.Mappings[ref].Contents = bytes.NewReader(page)
	img := encodeToBytes(t, p)
	q, err := Decode(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	m := &q.Mappings[ref]
	if !m.HeaderPage || m.StoredSize() != PageSize || !bytes.Equal(img[m.DataOffset:m.DataOffset+PageSize], page) {
		t.Fatalf("decoded mapping %d: HeaderPage %v, stored %d bytes at %#x; want the page", ref, m.HeaderPage, m.StoredSize(), m.DataOffset)
	}
	if minor := binary.LittleEndian.Uint32(versionDesc(t, img)[8:]); minor != 3 {
		t.Errorf("format minor %d, want 3", minor)
	}
	// The stream decoder skips the page and still hands out every content mapping.
	d, err := NewStreamDecoder(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("NewStreamDecoder: %v", err)
	}
	for {
		i, _, err := d.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("Next: %v", err)
			}
			break
		}
		if d.Process().Mappings[i].Kind != MapContent {
			t.Errorf("Next returned mapping %d of kind %d", i, d.Process().Mappings[i].Kind)
		}
	}
	// Not on another kind, nor at a nonzero offset.
	for _, bad := range []func(m *Mapping){
		func(m *Mapping) { m.FileOffset = PageSize },
		func(m *Mapping) { m.Kind = MapZero; m.File = nil },
	} {
		r := testProcess()
		r.Mappings[ref].HeaderPage = true
		r.Mappings[ref].Contents = bytes.NewReader(page)
		bad(&r.Mappings[ref])
		if err := Encode(&bytes.Buffer{}, r); err == nil {
			t.Errorf("Encode accepted HeaderPage on mapping %+v", r.Mappings[ref])
		}
	}
}

// coreDumpSeed is a valid format 1.3 image with both additions: the core-dump layout and a stored
// header page.
func coreDumpSeed(t *testing.T) []byte {
	p := testProcess()
	p.SigInfo = &SigInfo{Signo: 11, Code: 2, Addr: 0x400000}
	p.CoreDump = true
	for i := range p.Mappings {
		if m := &p.Mappings[i]; m.Kind == MapReference && m.FileOffset == 0 {
			m.HeaderPage = true
			m.Contents = bytes.NewReader(append([]byte("\x7fELF"), make([]byte, PageSize-4)...))
		}
	}
	return encodeToBytes(t, p)
}

// TestCoreDumpFuzzSeed writes (with -update) and checks the fuzz seed "core-dump" of both targets.
func TestCoreDumpFuzzSeed(t *testing.T) {
	img := coreDumpSeed(t)
	for _, target := range []string{"FuzzDecode", "FuzzDecodeStream"} {
		path := filepath.Join("testdata", "fuzz", target, "core-dump")
		if *update {
			body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(img)) + ")\n"
			if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -run TestCoreDumpFuzzSeed -update)", err)
		}
		body, _ := strings.CutPrefix(string(b), "go test fuzz v1\n[]byte(")
		s, err := strconv.Unquote(strings.TrimSuffix(body, ")\n"))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if s != string(img) {
			t.Errorf("%s differs from the encoder's output (run with -update after an intended change)", path)
		}
	}
}
