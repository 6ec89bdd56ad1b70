package treefmt

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// parentManifest returns a valid version-3 manifest of one process incremental against a parent.
func parentManifest() *Manifest {
	return &Manifest{Format: FormatName, Version: VersionParent, Hostname: "h",
		Processes: []Process{{PID: 1, PGID: 1, SID: 1, TIDs: []int32{1}, Comm: "sh", Image: ImageName(1),
			ImageSize: 4096, ImageSHA256: strings.Repeat("a", 64), ParentImage: ImageName(1)}},
		Parent: &ParentDir{Path: "../P", HostPath: "/x/P", SandboxPath: ParentSandboxPath(strings.Repeat("b", 64)), ManifestSHA256: strings.Repeat("b", 64)},
	}
}

func TestValidateParent(t *testing.T) {
	if err := parentManifest().Validate(); err != nil {
		t.Fatalf("valid manifest refused: %v", err)
	}
	for _, tc := range []struct {
		name, want string
		mutate     func(m *Manifest)
	}{
		{"old version", "needs manifest version 3", func(m *Manifest) { m.Version = Version }},
		{"newer version", "not supported", func(m *Manifest) { m.Version = MaxVersion + 1 }},
		{"empty path", "empty path", func(m *Manifest) { m.Parent.Path = "" }},
		{"relative host path", "host path", func(m *Manifest) { m.Parent.HostPath = "P" }},
		{"unclean sandbox path", "sandbox path", func(m *Manifest) { m.Parent.SandboxPath = "/a/../b" }},
		{"bad digest", "manifest digest", func(m *Manifest) { m.Parent.ManifestSHA256 = "xyz" }},
		{"parent image without parent", "needs a parent checkpoint", func(m *Manifest) { m.Parent = nil }},
		{"parent image with a directory", "parent image", func(m *Manifest) { m.Processes[0].ParentImage = "../pid-1.img" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := parentManifest()
			tc.mutate(m)
			if err := m.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate = %v, want an error naming %q", err, tc.want)
			}
		})
	}
	// A version 2 manifest without a parent still reads.
	m := parentManifest()
	m.Version, m.Parent, m.Processes[0].ParentImage = Version, nil, ""
	if err := m.Validate(); err != nil {
		t.Errorf("version 2 manifest refused: %v", err)
	}
}

// TestLocateParent: a parent is found relative to the child, else at its host path, and only with
// the manifest it had; otherwise the error is ErrStaleParent.
func TestLocateParent(t *testing.T) {
	base := t.TempDir()
	child, parent := filepath.Join(base, "C"), filepath.Join(base, "P")
	for _, d := range []string{child, parent} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(parent, ManifestName), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	digest, err := ManifestDigest(parent)
	if err != nil {
		t.Fatal(err)
	}
	pd := &ParentDir{Path: "../P", HostPath: "/nonexistent/P", SandboxPath: "/s", ManifestSHA256: digest}
	if got, err := locateParent(child, pd); err != nil || got != parent {
		t.Errorf("relative: %q, %v; want %q", got, err, parent)
	}
	pd.Path, pd.HostPath = "../moved", parent
	if got, err := locateParent(child, pd); err != nil || got != parent {
		t.Errorf("by host path: %q, %v; want %q", got, err, parent)
	}
	if err := os.WriteFile(filepath.Join(parent, ManifestName), []byte("{} "), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := locateParent(child, pd); !errors.Is(err, ErrStaleParent) || !strings.Contains(err.Error(), "another checkpoint") {
		t.Errorf("changed manifest: %v, want ErrStaleParent naming another checkpoint", err)
	}
	os.RemoveAll(parent)
	if _, err := locateParent(child, pd); !errors.Is(err, ErrStaleParent) {
		t.Errorf("missing parent: %v, want ErrStaleParent", err)
	}
}

// TestSplitStreamReplaceWithTransform: a failing transform leaves the directory as it was.
func TestSplitStreamReplaceWithTransform(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ck")
	if err := SplitStreamReplace(bytes.NewReader(writeTree(t)), dir); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, ManifestName))
	boom := errors.New("boom")
	err := SplitStreamReplaceWith(bytes.NewReader(writeTree(t)), dir, func(stage string) error {
		os.Remove(filepath.Join(stage, ImageName(1)))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("SplitStreamReplaceWith = %v, want the transform's error", err)
	}
	if _, err := VerifyDir(dir); err != nil {
		t.Errorf("the previous checkpoint did not survive a failed transform: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, ManifestName))
	if !bytes.Equal(before, after) {
		t.Error("manifest changed")
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), stagingPrefix) {
			t.Errorf("staging directory %s left behind", e.Name())
		}
	}
}
