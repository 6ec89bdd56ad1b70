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
func SplitStreamReplaceWith(r io.Reader, dir string, transform func(stage string) error) (err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	stage, err := os.MkdirTemp(dir, stagingPrefix)
	if err != nil {
		return fmt.Errorf("creating a staging directory in %s: %w", dir, err)
	}
	defer os.RemoveAll(stage)
	if err := SplitStream(r, stage); err != nil {
		return err
	}
	if transform != nil {
		if err := transform(stage); err != nil {
			return err
		}
		if _, err := CheckDir(stage); err != nil {
			return err
		}
	}
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
