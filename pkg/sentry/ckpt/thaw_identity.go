package ckpt

import (
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/vfsfh"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// An fd's file is reopened by path and only its type is compared: the process may have kept
// writing it after the freeze (a log), so size and times prove nothing. But a file *replaced* since
// (a new file renamed over the path, or removed and created again) is another file, and DragonFly's
// handle semantics make that ESTALE (issue 13 item 6). Inode numbers cannot tell: gVisor numbers
// inodes per sandbox, so the same file has another number in the next sandbox. The birth time
// can: rename and writes keep it, a new file has its own. So a regular file born after the freeze
// (beyond vfsfh.TimeSlack: the freezing sentry's clock and the host's differ by milliseconds) is
// stale. Not caught: a file created before the freeze and renamed over the path afterwards; a
// file system without birth times (the check is then skipped). Caught although the same file: a
// file the memory overlay copied up in the thawing sandbox after the freeze (the copy is new).
//
// A container restore makes its root and its tmpfs mounts again (the checkpoint's upper layer and
// tmpfs archives, or the engine's copy of the container's changes): every file there is born at
// the restore, so no file on those mounts is checked (treeShare.rebuilt); a file on another
// mount (a volume the host keeps) still is.

// checkNotReplaced returns a vfsfh.ErrStale error if f, reopened for the regular-file fd rec of an
// image frozen at freezeNano, was born after the freeze, unless f lies on one of the mounts a
// container restore rebuilt (rebuilt: nil for a thaw that is no container restore).
func checkNotReplaced(t *kernel.Task, f *vfs.FileDescription, rec *imgfmt.File, freezeNano int64, rebuilt rebuiltMounts) error {
	if rec.Kind != imgfmt.FileRegular || freezeNano <= 0 || rebuilt.has(f) {
		return nil
	}
	st, err := f.Stat(t, vfs.StatOptions{Mask: linux.STATX_BTIME})
	if err != nil || st.Mask&linux.STATX_BTIME == 0 {
		return nil // No birth time here: nothing to compare.
	}
	if born := st.Btime.ToNsec(); born > freezeNano+vfsfh.TimeSlack {
		return &vfsfh.StaleError{Path: rec.Handle.Path, Reason: "replaced: the file at the path was created after the freeze"}
	}
	return nil
}
