package inspect

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
)

// goldenImage is the codec's golden image: prog, pid 7, two threads, four mappings, four fds.
const goldenImage = "../imgfmt/testdata/golden-basic.img"

// goldenProcess decodes the golden image (held in memory; its mappings read their contents from it).
func goldenProcess(t *testing.T) *imgfmt.Process {
	t.Helper()
	img, err := os.ReadFile(goldenImage)
	if err != nil {
		t.Fatal(err)
	}
	p, err := imgfmt.Decode(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// writeImage encodes p into a new file and returns its path.
func writeImage(t *testing.T, p *imgfmt.Process) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := imgfmt.Encode(f, p); err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkReport checks that r's text has every string of want and decodes r's JSON into back.
func checkReport(t *testing.T, r Report, back any, want ...string) {
	t.Helper()
	var text, js bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		if !strings.Contains(text.String(), w) {
			t.Errorf("text lacks %q:\n%s", w, text.String())
		}
	}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js.Bytes(), back); err != nil {
		t.Fatalf("JSON does not parse: %v\n%s", err, js.String())
	}
}

// encodeToBytes encodes p into memory.
func encodeToBytes(t *testing.T, p *imgfmt.Process) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := imgfmt.Encode(&b, p); err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b.Bytes()
}

func TestInspectSparseImage(t *testing.T) {
	p := goldenProcess(t)
	// A mapping of 40 pages with data only in its first page: its 39 zero pages become a hole in a
	// seekable file. (Mapping 1's single zero page is too short a run and is written.)
	sparse := make([]byte, 40*imgfmt.PageSize)
	sparse[10] = 1
	p.Mappings = append(p.Mappings, imgfmt.Mapping{Start: 0x7ffe00100000, End: 0x7ffe00100000 + 40*imgfmt.PageSize, Prot: imgfmt.ProtRead, Kind: imgfmt.MapContent, Contents: bytes.NewReader(sparse)})
	s, err := File(writeImage(t, p))
	if err != nil {
		t.Fatal(err)
	}
	if s.Process.Name != "prog" || s.Process.PID != 7 || len(s.Threads) != 2 || s.Threads[0].RIP != "0x0000000000401000" {
		t.Errorf("summary identity/threads wrong: %+v %+v", s.Process, s.Threads)
	}
	if got := s.Mappings[1].Stored; got != 3*imgfmt.PageSize {
		t.Errorf("mapping 1 stores %d bytes on disk, want %d (a lone zero page is written)", got, 3*imgfmt.PageSize)
	}
	// The image ends with the 39 zero pages: all but the last page are a hole.
	if got := s.Mappings[4].Stored; got != 2*imgfmt.PageSize {
		t.Errorf("mapping 4 stores %d bytes on disk, want %d (first page + the image's last page)", got, 2*imgfmt.PageSize)
	}
	if s.Mappings[0].Kind != "reference" || s.Mappings[0].File != "/bin/prog" || s.Mappings[2].Kind != "zero" {
		t.Errorf("mapping kinds/files wrong: %+v", s.Mappings[:3])
	}
	tot := s.Totals
	if tot.MappedBytes != 52*imgfmt.PageSize || tot.ContentBytes != 45*imgfmt.PageSize || tot.ReferenceBytes != 2*imgfmt.PageSize || tot.ZeroBytes != 5*imgfmt.PageSize || tot.StoredBytes != 7*imgfmt.PageSize {
		t.Errorf("totals %+v", tot)
	}
	if len(s.Signals.Actions) != 1 || s.Signals.Actions[0].Name != "SIGUSR1" || len(s.Signals.Itimers) != 1 {
		t.Errorf("signals %+v", s.Signals)
	}
	if len(s.FDs) != 4 || !s.FDs[3].IsImage || s.FDs[2].StatusFlags != "O_RDWR|O_APPEND" || !s.FDs[2].Cloexec {
		t.Errorf("fds %+v", s.FDs)
	}

	var back Summary
	checkReport(t, s, &back, "prog (pid 7", "0x00007ffe0000f000", "[stack]", "reference", "SIGUSR1 (10)", "/data/prog.ckpt (this image)", "SIGCKPT (62)", "totals: 2 threads, 5 mappings, 4 fds", "cwd:", "/data/work", "format 1.1")
	if back.Totals != s.Totals || back.Threads[1].TID != 8 || back.Creds.Groups[1] != 27 || back.VM.Cwd != "/data/work" {
		t.Errorf("JSON round trip lost data")
	}
}

func TestInspectRejectsBadImage(t *testing.T) {
	img := encodeToBytes(t, goldenProcess(t))
	path := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(path, img[:len(img)-imgfmt.PageSize], 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	if _, err := Image(f, st.Size()); err == nil || !strings.Contains(err.Error(), "segments end at") {
		t.Errorf("Image of a truncated image: %v", err)
	}
}

// TestWriteTextEscapesControlCharacters (issue 13 item 15): names in an image are the frozen
// program's (comm, paths, descriptions) and a crafted image's; inspect must not print their control
// characters to the operator's terminal (an ESC starts a terminal escape sequence).
func TestWriteTextEscapesControlCharacters(t *testing.T) {
	p := goldenProcess(t)
	p.Info.Name = "e\x1b[2Jv\x07\n"
	p.VM.Exe.Path = "/bin/\x1b]0;pwned\x07"
	p.Cwd = &imgfmt.FileHandle{Path: "/tmp/\r\x9b2J", Mode: 0o40755}
	s, err := File(writeImage(t, p))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := s.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for i, r := range out {
		if (r < 0x20 && r != '\n') || (r >= 0x7f && r < 0xa0) {
			t.Fatalf("control character %U at byte %d of the summary:\n%q", r, i, out)
		}
	}
	for _, want := range []string{`e\x1b[2Jv\a\n`, `/bin/\x1b]0;pwned\a`, `/tmp/\r\x9b2J`} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks the escaped %s:\n%s", want, out)
		}
	}
}
