package treefmt

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFilesystemArchives: a stream with a filesystem archive splits into a directory that
// verifies; the archive is checked like an image; bad entries are refused by Validate.
func TestFilesystemArchives(t *testing.T) {
	var buf bytes.Buffer
	sw := NewStreamWriter(&buf)
	sw.BeginFile(TmpfsArchiveName(0))
	hs := &HashingSink{W: sw}
	hs.Write([]byte("a tar archive"))
	asum, asize := hs.Result()
	sw.BeginFile(ImageName(1))
	hs = &HashingSink{W: sw}
	hs.Write([]byte("ELF"))
	sum, size := hs.Result()
	m := &Manifest{Format: FormatName, Version: Version, Processes: []Process{
		{PID: 1, PGID: 1, SID: 1, TIDs: []int32{1}, Comm: "sh", Image: ImageName(1), ImageSize: size, ImageSHA256: sum.Hex},
	}, Filesystems: []FilesystemArchive{{Path: "/tmp", Kind: KindTmpfs, Options: "mode=1777", Flags: "nosuid,nodev", Archive: TmpfsArchiveName(0), Size: asize, SHA256: asum.Hex}}}
	sw.BeginFile(ManifestName)
	m.Encode(sw)
	sw.End()
	dir := filepath.Join(t.TempDir(), "ck")
	if err := SplitStream(bytes.NewReader(buf.Bytes()), dir); err != nil {
		t.Fatal(err)
	}
	got, err := VerifyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Filesystems) != 1 || got.Filesystems[0].Path != "/tmp" {
		t.Fatalf("filesystems %+v", got.Filesystems)
	}
	var again bytes.Buffer
	if err := WriteStream(&again, dir); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(again.Bytes(), []byte("a tar archive")) {
		t.Error("WriteStream left the archive out")
	}
	os.WriteFile(filepath.Join(dir, TmpfsArchiveName(0)), []byte("a tar archivX"), 0o600)
	if _, err := VerifyDir(dir); err == nil || !strings.Contains(err.Error(), "archive") {
		t.Errorf("a changed archive verified: %v", err)
	}

	for _, tc := range []struct {
		name, want string
		mutate     func(m *Manifest)
	}{
		{"old version", "version 2", func(m *Manifest) { m.Version = 1 }},
		{"relative path", "absolute", func(m *Manifest) { m.Filesystems[0].Path = "tmp" }},
		{"unclean path", "absolute", func(m *Manifest) { m.Filesystems[0].Path = "/tmp/../etc" }},
		{"tmpfs over root", "root", func(m *Manifest) { m.Filesystems[0].Path = "/" }},
		{"upper not at root", "want /", func(m *Manifest) { m.Filesystems[0].Kind = KindRootfsUpper }},
		{"unknown kind", "unknown kind", func(m *Manifest) { m.Filesystems[0].Kind = "ext4" }},
		{"bad name", "bad file name", func(m *Manifest) { m.Filesystems[0].Archive = "../x.tar" }},
		{"image name", "bad file name", func(m *Manifest) { m.Filesystems[0].Archive = ImageName(1) }},
		{"twice", "twice", func(m *Manifest) { m.Filesystems = append(m.Filesystems, m.Filesystems[0]) }},
		{"options", "bad options", func(m *Manifest) { m.Filesystems[0].Options = "size=1 mode=7" }},
		{"no digest", "missing its digest", func(m *Manifest) { m.Filesystems[0].SHA256 = "" }},
		{"two digests", "both", func(m *Manifest) { m.Filesystems[0].Digest = "crc32c-sparse:00000000" }},
		{"digest in version 2", "needs manifest version 5", func(m *Manifest) {
			m.Filesystems[0].SHA256, m.Filesystems[0].Digest = "", "crc32c-sparse:00000000"
		}},
	} {
		c := *m
		c.Filesystems = append([]FilesystemArchive{}, m.Filesystems...)
		tc.mutate(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want an error naming %q", tc.name, err, tc.want)
		}
	}
}
