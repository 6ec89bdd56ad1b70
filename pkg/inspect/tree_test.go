package inspect

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
)

// writeTreeDir writes a tree checkpoint directory: pid imagePID with the golden image (pid 7) and
// its zombie child 9, the image's digest computed with alg.
func writeTreeDir(t *testing.T, imagePID int32, alg treefmt.DigestAlg) string {
	t.Helper()
	dir := t.TempDir()
	img, err := os.ReadFile(goldenImage)
	if err != nil {
		t.Fatal(err)
	}
	name := treefmt.ImageName(imagePID)
	if err := os.WriteFile(filepath.Join(dir, name), img, 0o600); err != nil {
		t.Fatal(err)
	}
	sum, size, err := treefmt.HashFile(filepath.Join(dir, name), alg)
	if err != nil {
		t.Fatal(err)
	}
	m := &treefmt.Manifest{Format: treefmt.FormatName, Version: treefmt.Version, Root: imagePID, Hostname: "h", Processes: []treefmt.Process{
		{PID: imagePID, PGID: imagePID, SID: imagePID, TIDs: []int32{imagePID, 8}, Comm: "prog", Image: name, ImageSize: size},
		{PID: 9, PPID: imagePID, PGID: imagePID, SID: imagePID, Comm: "false", Zombie: &treefmt.ExitStatus{Code: 1}},
	}}
	m.Processes[0].SetDigest(sum)
	m.RaiseVersion()
	var b bytes.Buffer
	if err := m.Encode(&b); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, treefmt.ManifestName), b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestTree: a tree checkpoint is verified and described, with the algorithm of its digests, for
// both algorithms.
func TestTree(t *testing.T) {
	for _, tc := range []struct {
		alg  treefmt.DigestAlg
		line string
	}{
		{treefmt.DigestCRC32C, "  digests    CRC-32C (crc32c-sparse), verified"},
		{treefmt.DigestSHA256, "  digests    SHA-256 (sha256-sparse), verified"},
	} {
		t.Run(tc.alg.Flag(), func(t *testing.T) { testTree(t, tc.alg, tc.line) })
	}
}

func testTree(t *testing.T, alg treefmt.DigestAlg, digestLine string) {
	dir := writeTreeDir(t, 7, alg)
	r, err := Path(dir)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := r.(*TreeSummary)
	if !ok {
		t.Fatalf("Path(a tree directory) = %T, want *TreeSummary", r)
	}
	if s.Totals.Processes != 2 || s.Totals.Zombies != 1 || s.Totals.Threads != 2 || s.Totals.ImageBytes <= 0 {
		t.Errorf("totals %+v", s.Totals)
	}
	if len(s.Processes) != 2 || s.Processes[0].Mappings != 4 || s.Processes[0].FDs != 4 || s.Processes[1].Zombie == nil {
		t.Errorf("processes %+v", s.Processes)
	}
	var back TreeSummary
	checkReport(t, s, &back, "2 processes (1 zombies), 2 threads", "  7 0 7 7 prog  [prog -x]  threads 2, mappings 4", "    9 7 7 7 false  <zombie: exit status 1>", digestLine)
	if back.Totals != s.Totals || back.Manifest.Root != 7 || len(back.Digests) != 1 || back.Digests[0] != alg {
		t.Errorf("JSON round trip: %+v, digests %v", back.Totals, back.Digests)
	}
}

func TestTreeRejects(t *testing.T) {
	// The image holds pid 7, the manifest says 5.
	if _, err := Path(writeTreeDir(t, 5, treefmt.DefaultDigest)); err == nil || !strings.Contains(err.Error(), "holds pid 7") || !strings.Contains(err.Error(), "not a valid tree checkpoint") {
		t.Errorf("Path of a tree whose image holds another pid: %v", err)
	}
	for _, alg := range []treefmt.DigestAlg{treefmt.DigestCRC32C, treefmt.DigestSHA256} {
		dir := writeTreeDir(t, 7, alg)
		f, err := os.OpenFile(filepath.Join(dir, treefmt.ImageName(7)), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt([]byte{0xff}, 100)
		f.Close()
		if _, err := Path(dir); err == nil || !strings.Contains(err.Error(), "not a valid tree checkpoint") || !strings.Contains(err.Error(), alg.String()) {
			t.Errorf("Path of a tree with a tampered image (%s): %v, want an error naming the algorithm", alg, err)
		}
	}
}

func TestPathImage(t *testing.T) {
	r, err := Path(goldenImage)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := r.(*Summary); !ok || s.Process.PID != 7 || s.StoredBytes <= 0 {
		t.Errorf("Path(an image) = %T %+v", r, r)
	}
	if _, err := Path(filepath.Join(t.TempDir(), "missing")); !os.IsNotExist(err) {
		t.Errorf("Path of a missing file: %v, want ENOENT", err)
	}
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("\x7fELF not really"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Path(bad); err == nil || !strings.Contains(err.Error(), bad+" is not a valid checkpoint image") {
		t.Errorf("Path of a malformed image: %v", err)
	}
}
