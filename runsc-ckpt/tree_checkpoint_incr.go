package main

import (
	"fmt"
	"os"
	"path/filepath"

	"gvisor.dev/gvisor/pkg/log"
	"gvisor.dev/gvisor/runsc/container"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treeincr"
)

// Incremental container checkpoints: `checkpoint --format=elf --image-path C --parent-path P`.
//
// The sandbox cannot see P (engines put it anywhere on the host), so the sentry writes complete
// images as always and the host makes them incremental: SplitStreamReplaceWith splits and verifies
// the stream in C's staging directory, then treefmt.MakeIncrementalDir rewrites each image whose pid
// has an image in P as an incremental image against it (page comparison, as the freeze of a single
// process with a parent does) before the checkpoint is published. docs/incremental.md, "Container
// checkpoints".

// resolveParentPath returns the host directory --parent-path names: relative paths are relative to
// the image directory (CRIU's and runc's convention: Podman passes "../pre-checkpoint").
func resolveParentPath(imagePath, parentPath string) (string, error) {
	dir := parentPath
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(imagePath, parentPath)
	}
	return filepath.Abs(dir)
}

// incrementalTransform checks --parent-path and returns the step that makes the checkpoint
// incremental, or nil without a parent.
func incrementalTransform(c *container.Container, imagePath, parentPath string) (func(string) error, error) {
	if parentPath == "" {
		return nil, nil
	}
	if imagePath == "-" {
		return nil, fmt.Errorf("--parent-path needs an image directory, not a stream")
	}
	dir, err := resolveParentPath(imagePath, parentPath)
	if err != nil {
		return nil, err
	}
	if !treefmt.IsTreeDir(dir) {
		return nil, fmt.Errorf("--parent-path %s (%s): not an ELF checkpoint directory (no %s)", parentPath, dir, treefmt.ManifestName)
	}
	img, err := filepath.Abs(imagePath)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(img); err == nil {
		if pi, err := os.Stat(dir); err == nil && os.SameFile(fi, pi) {
			return nil, fmt.Errorf("--parent-path %s is the image directory itself: the new checkpoint would replace its own parent", parentPath)
		}
	}
	hostRoot := false
	if c.Spec != nil && c.Spec.Root != nil {
		root := c.Spec.Root.Path
		if !filepath.IsAbs(root) {
			root = filepath.Join(c.BundleDir, root)
		}
		hostRoot = filepath.Clean(root) == "/"
	}
	ps := treeincr.ParentSpec{Path: parentPath, Dir: dir, HostRoot: hostRoot}
	return func(stage string) error {
		st, err := treeincr.MakeIncrementalDir(stage, ps)
		if err != nil {
			return fmt.Errorf("making the checkpoint incremental against %s: %w", dir, err)
		}
		log.Infof("checkpoint: %d of %d images incremental against %s: %d bytes of data stored, %d in the complete images", st.Incremental, st.Images, dir, st.StoredBytes, st.FullBytes)
		return nil
	}, nil
}
