package treefmt

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSplitStreamReplace: a checkpoint written into an engine's reused directory replaces the
// previous checkpoint's files (an image the new one no longer has included) and keeps every other
// file; a broken stream leaves the directory as it was.
func TestSplitStreamReplace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "checkpoint")
	os.Mkdir(dir, 0o755)
	foreign := map[string]string{"inventory.img": "", "stats-dump": "podman", "pid-x.img": "not ours", "checkpoint.img": "old gvisor"}
	for n, c := range foreign {
		os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644)
	}
	os.WriteFile(filepath.Join(dir, ImageName(77)), []byte("stale image"), 0o600)
	os.WriteFile(filepath.Join(dir, ManifestName), []byte(`{"format":"old"}`), 0o600)

	stream := writeTree(t)
	if err := SplitStreamReplace(bytes.NewReader(stream), dir); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyDir(dir); err != nil {
		t.Fatal(err)
	}
	if !IsTreeDir(dir) {
		t.Fatal("not detected as a tree checkpoint")
	}
	if _, err := os.Stat(filepath.Join(dir, ImageName(77))); !os.IsNotExist(err) {
		t.Errorf("the previous checkpoint's pid-77.img survived: %v", err)
	}
	for n, c := range foreign {
		if b, err := os.ReadFile(filepath.Join(dir, n)); err != nil || string(b) != c {
			t.Errorf("foreign file %s: %q, %v; want it untouched", n, b, err)
		}
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), stagingPrefix) {
			t.Errorf("staging directory %s left behind", e.Name())
		}
	}

	// A truncated stream: the directory keeps the checkpoint it had.
	before, _ := os.ReadFile(filepath.Join(dir, ManifestName))
	if err := SplitStreamReplace(bytes.NewReader(stream[:len(stream)-20]), dir); err == nil {
		t.Fatal("a truncated stream was accepted")
	}
	if after, _ := os.ReadFile(filepath.Join(dir, ManifestName)); !bytes.Equal(before, after) {
		t.Error("a failed split changed the manifest")
	}
	if _, err := VerifyDir(dir); err != nil {
		t.Errorf("a failed split broke the previous checkpoint: %v", err)
	}
	ents, _ = os.ReadDir(dir)
	if len(ents) != len(foreign)+2 {
		t.Errorf("directory holds %d entries after a failed split, want %d", len(ents), len(foreign)+2)
	}

	// RemoveTree takes exactly the owned names.
	if err := RemoveTree(dir); err != nil {
		t.Fatal(err)
	}
	ents, _ = os.ReadDir(dir)
	if len(ents) != len(foreign) {
		t.Errorf("after RemoveTree: %d entries, want the %d foreign ones", len(ents), len(foreign))
	}
}

func TestOwnedName(t *testing.T) {
	for n, want := range map[string]bool{"manifest.json": true, "pid-1.img": true, "pid-65535.img": true, "tmpfs-0.tar": true,
		"pid-.img": false, "pid-1.img.bak": false, "inventory.img": false, "checkpoint.img": false, "tmpfs-a.tar": false, "x/pid-1.img": false} {
		if OwnedName(n) != want {
			t.Errorf("OwnedName(%q) = %t, want %t", n, !want, want)
		}
	}
}
