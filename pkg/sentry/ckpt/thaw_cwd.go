package ckpt

import (
	"fmt"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/vfsfh"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/fspath"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// Working directory: an image of format 1.1 records the frozen process's working directory by
// path. Prepare looks the path up with the thawer's credentials, as chdir(2) would (following
// symlinks, search permission required); it must still name a directory, else the thaw fails with
// ESTALE like a vanished reopened file (a path recorded as "... (deleted)" always does). Commit
// makes it the working directory. Only the kind is verified, not the inode: a thaw in a new
// sandbox sees the same tree under new inode numbers. An image without the record (format 1.0)
// leaves the thawer's working directory in place.

// prepareCwd looks up the image's working directory. It returns an empty VirtualDentry if the
// image has none; otherwise the caller owns the returned reference.
func prepareCwd(t *kernel.Task, p *imgfmt.Process) (vfs.VirtualDentry, error) {
	if p.Cwd == nil {
		return vfs.VirtualDentry{}, nil
	}
	h := vfsfh.FromImage(p.Cwd)
	if !h.Reopenable() || h.Type() != vfsfh.ModeDir {
		return vfs.VirtualDentry{}, fmt.Errorf("working directory: %w", vfsfh.Gone(h, fmt.Errorf("not a directory that can be looked up by path")))
	}
	root := t.FSContext().RootDirectory()
	if !root.Ok() {
		return vfs.VirtualDentry{}, fmt.Errorf("task %d has no root directory: %w", t.ThreadID(), linuxerr.ESRCH)
	}
	defer root.DecRef(t)
	pop := vfs.PathOperation{Root: root, Start: root, Path: fspath.Parse(h.Path), FollowFinalSymlink: true}
	vd, err := t.Kernel().VFS().GetDentryAt(t, t.Credentials(), &pop, &vfs.GetDentryOptions{CheckSearchable: true})
	if err != nil {
		if linuxerr.Equals(linuxerr.ENOENT, err) || linuxerr.Equals(linuxerr.ENOTDIR, err) || linuxerr.Equals(linuxerr.ELOOP, err) {
			return vfs.VirtualDentry{}, fmt.Errorf("working directory: %w", vfsfh.Gone(h, err))
		}
		return vfs.VirtualDentry{}, fmt.Errorf("working directory %q: %w", h.Path, err)
	}
	return vd, nil
}

// restoreCwd makes the prepared working directory t's (nothing if the image had none).
//
// Preconditions: running on t's task goroutine, t is the only task of its process.
func (p *thawPlan) restoreCwd(t *kernel.Task) {
	if p.cwd.Ok() {
		t.FSContext().SetWorkingDirectory(t, p.cwd) // Takes its own reference; release drops ours.
	}
}
