package ckpt

import (
	"fmt"
	"path"
	"strings"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/fspath"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// ckptFileMode is the mode of a ckpt-file: readable and writable by its owner only (DragonFly).
const ckptFileMode = 0o600

// tempSeq makes temporary names unique within this sentry; O_EXCL makes them safe anyway.
var tempSeq atomic.Uint64

// ckptFileName expands the policy's ckpt-file template for t's process. A '/' in the process name
// is replaced by '!', as Linux does for %e in core_pattern, so a name cannot add directories.
func ckptFileName(t *kernel.Task, p Policy) string {
	tg := t.ThreadGroup()
	creds := t.Credentials()
	name := strings.ReplaceAll(processName(t), "/", "!")
	return p.FileName(name, int32(tg.PIDNamespace().IDOfThreadGroup(tg)), uint32(creds.RealKUID.In(creds.UserNamespace).OrOverflow()))
}

// freezeToPolicyFile writes the image of t's process to the policy's ckpt-file, relative to the
// process's working directory, with t's credentials: the old file is unlinked first, the image is
// written to a temporary file (mode 0600) in the same directory and renamed into place; on any
// failure the temporary file is removed, so no partial image is left behind.
//
// Preconditions: running on t's task goroutine.
func freezeToPolicyFile(t *kernel.Task, p Policy, req captureRequest) error {
	name := ckptFileName(t, p)
	if name == "" {
		return fmt.Errorf("empty ckpt-file name: %w", linuxerr.ENOENT)
	}
	root := t.FSContext().RootDirectory()
	defer root.DecRef(t)
	cwd := t.FSContext().WorkingDirectory()
	defer cwd.DecRef(t)
	vfsObj := t.Kernel().VFS()
	creds := t.Credentials()
	pop := func(p string) *vfs.PathOperation {
		path := fspath.Parse(p)
		start := cwd
		if path.Absolute {
			start = root // vfs.PathOperation's invariant for absolute paths.
		}
		return &vfs.PathOperation{Root: root, Start: start, Path: path}
	}

	if err := vfsObj.UnlinkAt(t, creds, pop(name)); err != nil && !linuxerr.Equals(linuxerr.ENOENT, err) {
		return fmt.Errorf("unlinking the old image %q: %w", name, err)
	}

	dir, base := path.Split(name)
	var (
		tmp  string
		file *vfs.FileDescription
		err  error
	)
	for range 8 {
		tmp = fmt.Sprintf("%s.%s.tmp-%d-%d", dir, base, t.ThreadID(), tempSeq.Add(1))
		file, err = vfsObj.OpenAt(t, creds, pop(tmp), &vfs.OpenOptions{
			Flags: linux.O_WRONLY | linux.O_CREAT | linux.O_EXCL | linux.O_LARGEFILE | linux.O_CLOEXEC,
			Mode:  ckptFileMode,
		})
		if !linuxerr.Equals(linuxerr.EEXIST, err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("creating %q: %w", tmp, err)
	}
	err = writeImage(t, newFileSink(t, file), req)
	file.DecRef(t)
	if err == nil {
		err = vfsObj.RenameAt(t, creds, pop(tmp), pop(name), &vfs.RenameOptions{})
		if err != nil {
			err = fmt.Errorf("renaming %q to %q: %w", tmp, name, err)
		}
	}
	if err != nil {
		if uerr := vfsObj.UnlinkAt(t, creds, pop(tmp)); uerr != nil {
			t.Warningf("ckpt: removing the partial image %q: %v", tmp, uerr)
		}
		return err
	}
	return nil
}
