package imgfmt

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInspectSparseImage(t *testing.T) {
	p := testProcess()
	// A mapping of 40 pages with data only in its first page: its 39 zero pages become a hole in a
	// seekable file. (Mapping 1's single zero page is too short a run and is written.)
	sparse := make([]byte, 40*PageSize)
	sparse[10] = 1
	p.Mappings = append(p.Mappings, Mapping{Start: 0x7ffe00100000, End: 0x7ffe00100000 + 40*PageSize, Prot: ProtRead, Kind: MapContent, Contents: bytes.NewReader(sparse)})
	path := writeImage(t, t.TempDir(), "img", p)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	s, err := Inspect(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	if s.Process.Name != "prog" || s.Process.PID != 7 || len(s.Threads) != 2 || s.Threads[0].RIP != "0x0000000000401000" {
		t.Errorf("summary identity/threads wrong: %+v %+v", s.Process, s.Threads)
	}
	if got := s.Mappings[1].Stored; got != 3*PageSize {
		t.Errorf("mapping 1 stores %d bytes on disk, want %d (a lone zero page is written)", got, 3*PageSize)
	}
	// The image ends with the 39 zero pages: all but the last page are a hole.
	if got := s.Mappings[4].Stored; got != 2*PageSize {
		t.Errorf("mapping 4 stores %d bytes on disk, want %d (first page + the image's last page)", got, 2*PageSize)
	}
	if s.Mappings[0].Kind != "reference" || s.Mappings[0].File != "/bin/prog" || s.Mappings[2].Kind != "zero" {
		t.Errorf("mapping kinds/files wrong: %+v", s.Mappings[:3])
	}
	tot := s.Totals
	if tot.MappedBytes != 52*PageSize || tot.ContentBytes != 45*PageSize || tot.ReferenceBytes != 2*PageSize || tot.ZeroBytes != 5*PageSize || tot.StoredBytes != 7*PageSize {
		t.Errorf("totals %+v", tot)
	}
	if len(s.Signals.Actions) != 1 || s.Signals.Actions[0].Name != "SIGUSR1" || len(s.Signals.Itimers) != 1 {
		t.Errorf("signals %+v", s.Signals)
	}
	if len(s.FDs) != 4 || !s.FDs[3].IsImage || s.FDs[2].StatusFlags != "O_RDWR|O_APPEND" || !s.FDs[2].Cloexec {
		t.Errorf("fds %+v", s.FDs)
	}

	var text bytes.Buffer
	if err := s.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"prog (pid 7", "0x00007ffe0000f000", "[stack]", "reference", "SIGUSR1 (10)", "/data/prog.ckpt (this image)", "SIGCKPT (62)", "totals: 2 threads, 5 mappings, 4 fds", "cwd:", "/data/work", "format 1.1"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text summary lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := s.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Summary
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON summary does not parse: %v", err)
	}
	if back.Totals != s.Totals || back.Threads[1].TID != 8 || back.Creds.Groups[1] != 27 || back.VM.Cwd != "/data/work" {
		t.Errorf("JSON round trip lost data")
	}
}

func TestInspectRejectsBadImage(t *testing.T) {
	img := encodeToBytes(t, testProcess())
	path := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(path, img[:len(img)-PageSize], 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	if _, err := Inspect(f, st.Size()); err == nil || !strings.Contains(err.Error(), "segments end at") {
		t.Errorf("Inspect of a truncated image: %v", err)
	}
}
