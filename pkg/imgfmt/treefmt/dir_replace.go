package treefmt

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
)

// Writing a checkpoint into a directory that already holds files.
//
// Engines hand the runtime an image directory of their own choosing and reuse it: Podman
// checkpoints a container into the same userdata/checkpoint every time and keeps its own files
// beside the image (stats, spec dumps); a directory may hold an earlier checkpoint in either format.
// The rule: a tree checkpoint owns the names it writes (OwnedName) and replaces them; every other
// file in the directory is left as it is. Nothing of the old checkpoint is touched until the new
// one has been received and verified completely in a hidden staging directory inside the target
// (same filesystem, so the files are renamed, not copied); then the old manifest goes first (from
// that moment the directory is not a tree checkpoint), the stale owned files after it, the new
// files are renamed in, and the new manifest comes last (from that moment it is one).

// ownedName matches the file names a tree checkpoint writes besides the manifest.
var ownedName = regexp.MustCompile(`^(pid-[0-9]+\.img|tmpfs-[0-9]+\.tar)$`)

// imageName matches the name of a process image.
var imageName = regexp.MustCompile(`^pid-[0-9]+\.img$`)

// stagingPrefix starts the name of the staging directory inside the target.
const stagingPrefix = ".runsc-ckpt-staging-"

// OwnedName reports whether name (a plain file name) is one a tree checkpoint writes: the manifest,
// a process image pid-N.img or a tmpfs archive tmpfs-N.tar.
func OwnedName(name string) bool { return name == ManifestName || ownedName.MatchString(name) }

// RemoveTree removes the tree checkpoint files (OwnedName) from dir, the manifest first, and leaves
// every other file alone. A dir that does not exist holds nothing to remove.
func RemoveTree(dir string) error {
	if err := os.Remove(filepath.Join(dir, ManifestName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing the previous checkpoint's manifest: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Type().IsRegular() && OwnedName(e.Name()) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("removing the previous checkpoint's %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}

// SplitStreamReplace reads a tree stream from r into dir, which may exist and hold other files: the
// stream is split into a staging directory inside dir and verified; only then are the files of a
// previous tree checkpoint in dir removed (RemoveTree) and the new ones renamed in, the manifest
// last. Files with other names are never touched. If the stream is incomplete or does not verify,
// dir is as it was; the staging directory is removed on every path. dir is created with mode 0700
// if missing.
func SplitStreamReplace(r io.Reader, dir string) error {
	return SplitStreamReplaceWith(r, dir, nil)
}

// SplitStreamReplaceWith is SplitStreamReplace with a step between the verification and the
// replacement: transform, if not nil, may rewrite the verified checkpoint in the staging directory
// (MakeIncrementalDir does); the result must still pass CheckDir. If it fails, dir is as it was.
func SplitStreamReplaceWith(r io.Reader, dir string, transform func(stage string) error) error {
	st, err := NewStage(dir)
	if err != nil {
		return err
	}
	defer st.Close()
	return st.ReceiveReplace(r, transform)
}

// Stage is a checkpoint being received into the hidden staging directory of its image directory
// (SplitStreamReplaceWith), optionally with image files that the writer of the stream fills
// directly (ImageFiles: CKPT_TREE_IMAGE_FDS_SHIFT).
type Stage struct {
	dir  string // The image directory.
	path string // The staging directory inside it.
	// files are the image files, named imageFilePrefix+index until the stream names them.
	files []*os.File
	// names holds each image file's name once a SLOT record gave it.
	names []string
}

// imageFilePrefix starts the name of an image file in the staging directory until the stream
// names it (OwnedName never matches it: a leftover would fail the replacement, not be published).
const imageFilePrefix = ".image-fd-"

// NewStage creates dir (mode 0700) if missing and a staging directory inside it. The caller
// closes the stage (Close), which removes the staging directory.
func NewStage(dir string) (*Stage, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	path, err := os.MkdirTemp(dir, stagingPrefix)
	if err != nil {
		return nil, fmt.Errorf("creating a staging directory in %s: %w", dir, err)
	}
	return &Stage{dir: dir, path: path}, nil
}

// Path returns the staging directory.
func (s *Stage) Path() string { return s.path }

// ImageFiles creates n empty image files in the staging directory, open for writing, for the
// writer of the stream (the helper's fds 3 to 3+n-1). They stay owned by the stage: Close closes
// them. It may be called once, before ReceiveReplace.
func (s *Stage) ImageFiles(n int) ([]*os.File, error) {
	if s.files != nil {
		return nil, errors.New("image files requested twice")
	}
	s.files = make([]*os.File, 0, n)
	for i := 0; i < n; i++ {
		f, err := os.OpenFile(filepath.Join(s.path, fmt.Sprintf("%s%d", imageFilePrefix, i)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("creating an image file in %s: %w", s.path, err)
		}
		s.files = append(s.files, f)
	}
	s.names = make([]string, n)
	return s.files, nil
}

// slot handles a SLOT record: image file index holds the file name, complete.
func (s *Stage) slot(name string, index uint64) error {
	if index >= uint64(len(s.files)) {
		return invalidf("%s: in image file %d, but there are %d", name, index, len(s.files))
	}
	if s.names[index] != "" {
		return invalidf("image file %d holds both %s and %s", index, s.names[index], name)
	}
	if !imageName.MatchString(name) {
		return invalidf("image file %d holds %q, not a process image", index, name)
	}
	if err := os.Rename(filepath.Join(s.path, fmt.Sprintf("%s%d", imageFilePrefix, index)), filepath.Join(s.path, name)); err != nil {
		return fmt.Errorf("naming image file %d %s: %w", index, name, err)
	}
	s.names[index] = name
	return nil
}

// ReceiveReplace reads the stream from r into the staging directory and verifies it (images in
// image files are checked by size only: their bytes never pass through this process), removes the
// image files the stream left unused, applies transform if not nil, and then replaces the tree
// checkpoint files of the image directory with the new ones (see SplitStreamReplace). If anything
// fails, the image directory is as it was.
func (s *Stage) ReceiveReplace(r io.Reader, transform func(stage string) error) error {
	var written []string
	var slot func(string, uint64) error
	if s.files != nil {
		slot = s.slot
	}
	if err := splitInto(r, s.path, &written, slot); err != nil {
		return err
	}
	for i, n := range s.names {
		if n == "" {
			if err := os.Remove(filepath.Join(s.path, fmt.Sprintf("%s%d", imageFilePrefix, i))); err != nil {
				return err
			}
		}
	}
	if transform != nil {
		if err := transform(s.path); err != nil {
			return err
		}
		if _, err := CheckDir(s.path); err != nil {
			return err
		}
	}
	return s.replace()
}

// Close closes the image files and removes the staging directory (and whatever is left in it).
func (s *Stage) Close() {
	for _, f := range s.files {
		f.Close()
	}
	os.RemoveAll(s.path)
}

// replace moves the verified checkpoint from the staging directory into the image directory.
func (s *Stage) replace() error {
	dir, stage := s.dir, s.path
	ents, err := os.ReadDir(stage)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !OwnedName(e.Name()) {
			return invalidf("the stream holds %q, not a name a tree checkpoint writes", e.Name())
		}
		if fi, err := os.Lstat(filepath.Join(dir, e.Name())); err == nil && !fi.Mode().IsRegular() {
			return fmt.Errorf("%s: %s exists and is not a regular file; not replacing it", dir, e.Name())
		}
	}
	if err := RemoveTree(dir); err != nil {
		return err
	}
	for _, e := range ents {
		if e.Name() == ManifestName {
			continue
		}
		if err := os.Rename(filepath.Join(stage, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("moving %s into %s: %w", e.Name(), dir, err)
		}
	}
	if err := os.Rename(filepath.Join(stage, ManifestName), filepath.Join(dir, ManifestName)); err != nil {
		return fmt.Errorf("moving the manifest into %s: %w", dir, err)
	}
	return nil
}
