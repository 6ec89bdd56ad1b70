package ckpt

import (
	"fmt"
	"strings"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/vfsfh/sentryfh"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// cwdStatMask is what the working directory's handle records (as sentryfh's handles do).
const cwdStatMask = linux.STATX_TYPE | linux.STATX_MODE | linux.STATX_INO | linux.STATX_SIZE | linux.STATX_MTIME | linux.STATX_CTIME

// captureCwd records t's working directory: its path relative to t's root, as /proc/pid/cwd reads
// (with " (deleted)" appended if it was removed: a thaw then fails with ESTALE rather than silently
// running elsewhere), and its attributes. It returns nil if t has no filesystem context (an exiting
// task) or the path cannot be recorded (not absolute, or longer than imgfmt.MaxPathLen).
func captureCwd(t *kernel.Task) (*imgfmt.FileHandle, error) {
	fsc := t.FSContext()
	if fsc == nil {
		return nil, nil
	}
	cwd := fsc.WorkingDirectory()
	if !cwd.Ok() {
		return nil, nil
	}
	defer cwd.DecRef(t)
	root := fsc.RootDirectory()
	if !root.Ok() {
		return nil, nil
	}
	defer root.DecRef(t)
	path, err := t.Kernel().VFS().PathnameWithDeleted(t, root, cwd)
	if err != nil {
		return nil, fmt.Errorf("path of the working directory: %w", err)
	}
	if !strings.HasPrefix(path, "/") || len(path) > imgfmt.MaxPathLen {
		// Not expressible in the image (a synthetic name, or deeper than PATH_MAX, where getcwd
		// fails too): leave it out rather than fail the freeze; a thaw keeps the thawer's cwd.
		t.Debugf("ckpt: freeze: working directory %.64q not recorded", path)
		return nil, nil
	}
	// An empty path operation stats its start: the directory itself, whatever its path says now.
	pop := vfs.PathOperation{Root: root, Start: cwd}
	st, err := t.Kernel().VFS().StatAt(t, t.Credentials(), &pop, &vfs.StatOptions{Mask: cwdStatMask})
	if err != nil {
		return nil, fmt.Errorf("stat of the working directory %q: %w", path, err)
	}
	return sentryfh.FromStat(path, &st).ToImage(), nil
}
