// Package sentryfh is the gVisor side of pkg/vfsfh: it makes a vfsfh.Handle from a file inside the
// sentry (an open *vfs.FileDescription, or a path) and reopens a handle by path with a task's
// credentials, verifying that it still names the same, unchanged file.
//
// Freeze uses FromFD for the fd table and the executable and FromPath for file mappings (the file
// object behind a VMA is not reachable in gVisor, only its path, device and inode); thaw uses Reopen.
package sentryfh

import (
	"fmt"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/vfsfh"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/fspath"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// statMask is every attribute a Handle holds.
const statMask = linux.STATX_TYPE | linux.STATX_MODE | linux.STATX_INO | linux.STATX_SIZE | linux.STATX_MTIME | linux.STATX_CTIME

// FromStat builds a Handle from a path and that file's statx result.
func FromStat(path string, st *linux.Statx) vfsfh.Handle {
	return vfsfh.Handle{
		Path:      path,
		DevMajor:  st.DevMajor,
		DevMinor:  st.DevMinor,
		Ino:       st.Ino,
		Mode:      uint32(st.Mode),
		Size:      int64(st.Size),
		MtimeNano: st.Mtime.ToNsec(),
		CtimeNano: st.Ctime.ToNsec(),
	}
}

// FromFD stats the open file fd into a Handle. Its path is computed as /proc/pid/fd/N shows it,
// relative to t's root: "pipe:[N]", "anon_inode:[eventfd]" and "... (deleted)" included, so the
// result says by Reopenable whether a thaw can reopen it.
//
// Preconditions: t is the task on whose behalf the freeze runs (normally the task goroutine).
func FromFD(t *kernel.Task, fd *vfs.FileDescription) (vfsfh.Handle, error) {
	path, err := Pathname(t, fd)
	if err != nil {
		return vfsfh.Handle{}, err
	}
	st, err := fd.Stat(t, vfs.StatOptions{Mask: statMask})
	if err != nil {
		return vfsfh.Handle{}, fmt.Errorf("stat %q: %w", path, err)
	}
	return FromStat(path, &st), nil
}

// Pathname returns fd's path relative to t's root, as /proc/pid/fd/N shows it.
func Pathname(t *kernel.Task, fd *vfs.FileDescription) (string, error) {
	root := t.FSContext().RootDirectory()
	if !root.Ok() {
		return "", fmt.Errorf("task %d has no root directory: %w", t.ThreadID(), linuxerr.ESRCH)
	}
	defer root.DecRef(t)
	path, err := t.Kernel().VFS().PathnameWithDeleted(t, root, fd.VirtualDentry())
	if err != nil {
		return "", fmt.Errorf("path of fd: %w", err)
	}
	return path, nil
}

// FromPath stats the file at the absolute path (following symlinks) with t's credentials.
func FromPath(t *kernel.Task, path string) (vfsfh.Handle, error) {
	root := t.FSContext().RootDirectory()
	if !root.Ok() {
		return vfsfh.Handle{}, fmt.Errorf("task %d has no root directory: %w", t.ThreadID(), linuxerr.ESRCH)
	}
	defer root.DecRef(t)
	pop := vfs.PathOperation{Root: root, Start: root, Path: fspath.Parse(path), FollowFinalSymlink: true}
	st, err := t.Kernel().VFS().StatAt(t, t.Credentials(), &pop, &vfs.StatOptions{Mask: statMask})
	if err != nil {
		return vfsfh.Handle{}, fmt.Errorf("stat %q: %w", path, err)
	}
	return FromStat(path, &st), nil
}

// Reopen opens want.Path with t's credentials and open(2) flags (O_CREAT, O_TRUNC and O_EXCL are
// dropped: a thaw must never create or truncate a file, least of all the image it is reading), then
// verifies the opened file against want with checks. The caller owns the returned reference.
//
// Errors: a handle that is not reopenable, or whose path no longer resolves (ENOENT, ENOTDIR,
// ELOOP), or whose file changed → an error matching vfsfh.ErrStale; any other open error (EACCES,
// EMFILE, ...) is returned wrapped as it is, so the caller can pass its errno on.
//
// Unless want is itself a FIFO, the open never blocks: it is made with O_NONBLOCK, which is
// cleared again after the check if flags lacked it. A path that became a FIFO would otherwise wait
// for the FIFO's other end forever (an open for writing without a reader fails with ENXIO: also
// stale, since only a FIFO, socket or device can give that).
func Reopen(t *kernel.Task, want vfsfh.Handle, flags uint32, checks vfsfh.Check) (*vfs.FileDescription, error) {
	if !want.Reopenable() {
		return nil, vfsfh.Gone(want, fmt.Errorf("not reopenable by path"))
	}
	root := t.FSContext().RootDirectory()
	if !root.Ok() {
		return nil, fmt.Errorf("task %d has no root directory: %w", t.ThreadID(), linuxerr.ESRCH)
	}
	defer root.DecRef(t)
	flags = flags&^(linux.O_CREAT|linux.O_TRUNC|linux.O_EXCL) | linux.O_LARGEFILE
	follow := true
	if want.Type() == vfsfh.ModeSymlink {
		flags |= linux.O_PATH | linux.O_NOFOLLOW
		follow = false
	}
	pop := vfs.PathOperation{Root: root, Start: root, Path: fspath.Parse(want.Path), FollowFinalSymlink: follow}
	openFlags := flags
	if want.Type() != vfsfh.ModeFIFO {
		openFlags |= linux.O_NONBLOCK
	}
	fd, err := t.Kernel().VFS().OpenAt(t, t.Credentials(), &pop, &vfs.OpenOptions{Flags: openFlags})
	if err != nil {
		if linuxerr.Equals(linuxerr.ENOENT, err) || linuxerr.Equals(linuxerr.ENOTDIR, err) || linuxerr.Equals(linuxerr.ELOOP, err) ||
			(linuxerr.Equals(linuxerr.ENXIO, err) && want.Type() != vfsfh.ModeCharDev && want.Type() != vfsfh.ModeBlockDev) {
			return nil, vfsfh.Gone(want, err)
		}
		return nil, fmt.Errorf("reopen %q: %w", want.Path, err)
	}
	st, err := fd.Stat(t, vfs.StatOptions{Mask: statMask})
	if err != nil {
		fd.DecRef(t)
		return nil, fmt.Errorf("stat reopened %q: %w", want.Path, err)
	}
	if err := vfsfh.VerifyWith(FromStat(want.Path, &st), want, checks); err != nil {
		fd.DecRef(t)
		return nil, err
	}
	if openFlags != flags {
		if err := fd.SetStatusFlags(t, t.Credentials(), fd.StatusFlags()&^linux.O_NONBLOCK); err != nil {
			fd.DecRef(t)
			return nil, fmt.Errorf("reopen %q: clearing O_NONBLOCK: %w", want.Path, err)
		}
	}
	return fd, nil
}
