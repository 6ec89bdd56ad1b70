package ckpt

import (
	"fmt"
	"io"
	"strings"

	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/fspath"
	"gvisor.dev/gvisor/pkg/sentry/fsimpl/tmpfs"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/kernel/auth"
	"gvisor.dev/gvisor/pkg/sentry/vfs"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
)

// restoreContainerState puts back what a whole-container checkpoint holds besides processes,
// before any process is created: the hostname, and every archived tmpfs (freeze_tree_fs.go),
// mounted afresh at its mount point from its archive (gVisor's tmpfs reads a tar into a new
// filesystem: tmpfs.FilesystemOpts.SourceTar) in place of the tmpfs the new sandbox has there. The
// rootfs upper layer is not restored here: the host command hands it to the new sandbox, which
// builds its root overlay with it (runsc's dev.gvisor.tar.rootfs.upper). Only for a restore that
// makes the caller the root of a whole-container checkpoint (the init of a fresh container); a
// restore into a running sandbox (checkpt -r -t) leaves the sandbox's filesystems alone.
//
// It returns the mounts whose files were made again after the freeze (rebuiltMounts): the
// restored tmpfs mounts and the container's root (from the checkpoint's upper layer, or by the
// engine from its copy of the container's changes). Their files' birth times are the restore's,
// so an fd's file there is not checked for having been replaced (thaw_identity.go).
func restoreContainerState(t *kernel.Task, dir *vfs.FileDescription, m *treefmt.Manifest, self bool) (rebuiltMounts, error) {
	if !self || m.Root != 0 {
		return nil, nil
	}
	if m.Hostname != "" {
		t.UTSNamespace().SetHostName(t, m.Hostname)
	}
	root := t.FSContext().RootDirectory()
	rebuilt := rebuiltMounts{root.Mount(): true}
	root.DecRef(t)
	for _, fa := range m.Filesystems {
		if fa.Kind != treefmt.KindTmpfs {
			continue
		}
		mnt, err := restoreTmpfs(t, dir, fa)
		if err != nil {
			return nil, fmt.Errorf("restoring the tmpfs at %s: %w", fa.Path, err)
		}
		rebuilt[mnt] = true
	}
	return rebuilt, nil
}

// rebuiltMounts is the set of mounts a container restore made afresh (restoreContainerState).
// The mounts are compared, never dereferenced: the set holds no references.
type rebuiltMounts map[*vfs.Mount]bool

// has reports whether f's file lies on a rebuilt mount; false for a nil set.
func (s rebuiltMounts) has(f *vfs.FileDescription) bool {
	return s[f.Mount()]
}

// restoreTmpfs mounts a tmpfs made from fa's archive at fa.Path, after detaching the tmpfs mounted
// there. Manifests list filesystems by path, so a parent is restored before a tmpfs below it.
// It returns the new mount.
func restoreTmpfs(t *kernel.Task, dir *vfs.FileDescription, fa treefmt.FilesystemArchive) (*vfs.Mount, error) {
	f, err := openInDir(t, dir, fa.Archive)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", fa.Archive, err)
	}
	defer f.DecRef(t)
	mntns := t.MountNamespace()
	creds := auth.NewRootCredentials(mntns.Owner)
	root := t.FSContext().RootDirectory()
	defer root.DecRef(t)
	vfsObj := t.Kernel().VFS()
	pop := &vfs.PathOperation{Root: root, Start: root, Path: fspath.Parse(fa.Path)}
	vd, err := vfsObj.GetDentryAt(t, creds, pop, &vfs.GetDentryOptions{})
	if err != nil {
		return nil, fmt.Errorf("the mount point: %w", err)
	}
	mounted := vd.Dentry() == vd.Mount().Root() && vd.Mount().Filesystem().FilesystemType().Name() == tmpfs.Name
	vd.DecRef(t)
	if mounted {
		if err := vfsObj.UmountAt(t, creds, pop, &vfs.UmountOptions{Flags: linux.MNT_DETACH}); err != nil {
			return nil, fmt.Errorf("unmounting the new sandbox's tmpfs: %w", err)
		}
	}
	opts := &vfs.MountOptions{GetFilesystemOptions: vfs.GetFilesystemOptions{
		Data:         fa.Options,
		InternalData: tmpfs.FilesystemOpts{SourceTar: io.NopCloser(io.NewSectionReader(fileReaderAt{t: t, f: f}, 0, fa.Size))},
	}}
	for _, fl := range strings.Split(fa.Flags, ",") {
		switch fl {
		case "ro":
			opts.ReadOnly = true
		case "nosuid":
			opts.Flags.NoSUID = true
		case "nodev":
			opts.Flags.NoDev = true
		case "noexec":
			opts.Flags.NoExec = true
		case "noatime":
			opts.Flags.NoATime = true
		}
	}
	// MountAt returns the mount without a reference; the VFS holds it.
	mnt, err := vfsObj.MountAt(t, creds, "tmpfs", pop, tmpfs.Name, opts)
	if err != nil {
		return nil, fmt.Errorf("mounting the restored tmpfs: %w", err)
	}
	t.Infof("ckpt: tree restore: tmpfs %s restored from %s (%d bytes)", fa.Path, fa.Archive, fa.Size)
	return mnt, nil
}
