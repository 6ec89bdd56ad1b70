package treefmt

import (
	"fmt"
	"path"
	"strings"
)

// Filesystem contents that exist only inside the sandbox: the container's tmpfs mounts (/tmp,
// /dev/shm, ...) and the upper layer of a rootfs that the sandbox overlays in memory. A tree
// checkpoint (manifest version 2) carries each as a tar archive (tmpfs-N.tar), written by gVisor's
// own tmpfs serializer, and a whole-container restore puts them back before any process thaws.

// Kinds of a FilesystemArchive.
const (
	// KindTmpfs is a tmpfs mounted at Path: the whole filesystem.
	KindTmpfs = "tmpfs"
	// KindRootfsUpper is the in-memory upper layer of the root filesystem's overlay (Path "/"),
	// whiteouts included (character devices 0/0, as overlayfs stores them).
	KindRootfsUpper = "rootfs-upper"
)

// FilesystemArchive is one archived in-sandbox filesystem of a tree checkpoint.
type FilesystemArchive struct {
	// Path is the mount point inside the container (absolute, clean).
	Path string `json:"path"`
	Kind string `json:"kind"`
	// Options are the tmpfs mount options to mount it with again (size, nr_inodes, mode), and
	// Flags its mount flags (ro, nosuid, nodev, noexec, noatime), both comma-separated.
	Options string `json:"options,omitempty"`
	Flags   string `json:"flags,omitempty"`
	// Archive is the tar file's name in the directory (TmpfsArchiveName); Size its size, and
	// SHA256 or Digest (version 5) its sparse digest, one of the two (as for images).
	Archive string `json:"archive"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256,omitempty"`
	Digest  string `json:"digest,omitempty"`
}

// TmpfsArchiveName is the file name of the i-th filesystem archive of a checkpoint.
func TmpfsArchiveName(i int) string { return fmt.Sprintf("tmpfs-%d.tar", i) }

// validateFilesystems checks m's filesystem archives.
func (m *Manifest) validateFilesystems(images map[string]int32) error {
	if len(m.Filesystems) > 0 && m.Version < 2 {
		return invalidf("filesystem archives need manifest version 2, this one says %d", m.Version)
	}
	paths := make(map[string]bool)
	for _, fa := range m.Filesystems {
		if fa.Path == "" || fa.Path[0] != '/' || path.Clean(fa.Path) != fa.Path || strings.ContainsRune(fa.Path, 0) {
			return invalidf("filesystem archive path %q: not an absolute clean path", fa.Path)
		}
		switch fa.Kind {
		case KindTmpfs:
			if fa.Path == "/" {
				return invalidf("a tmpfs archive cannot be restored over the root")
			}
		case KindRootfsUpper:
			if fa.Path != "/" {
				return invalidf("rootfs upper layer archive at %q, want /", fa.Path)
			}
		default:
			return invalidf("filesystem archive of %s: unknown kind %q", fa.Path, fa.Kind)
		}
		if paths[fa.Path] {
			return invalidf("filesystem archive path %s appears twice", fa.Path)
		}
		paths[fa.Path] = true
		if err := checkName(fa.Archive); err != nil || !ownedName.MatchString(fa.Archive) || !strings.HasPrefix(fa.Archive, "tmpfs-") {
			return invalidf("filesystem archive of %s: bad file name %q", fa.Path, fa.Archive)
		}
		if _, dup := images[fa.Archive]; dup {
			return invalidf("file %q named twice", fa.Archive)
		}
		images[fa.Archive] = 0
		if fa.Size < 0 {
			return invalidf("filesystem archive of %s: negative size", fa.Path)
		}
		if err := m.checkDigestFields(fa.SHA256, fa.Digest); err != nil {
			return invalidf("filesystem archive of %s: %v", fa.Path, err)
		}
		for _, s := range []string{fa.Options, fa.Flags} {
			if strings.ContainsAny(s, " \t\n\x00") {
				return invalidf("filesystem archive of %s: bad options %q", fa.Path, s)
			}
		}
	}
	return nil
}
