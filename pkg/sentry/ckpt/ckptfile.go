package ckpt

import (
	"fmt"
	"path"
	"strings"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/context"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/fspath"
	"gvisor.dev/gvisor/pkg/log"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/kernel/auth"
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
	c, err := createCkptFile(t, p)
	if err != nil {
		return err
	}
	return c.finish(t, writeImage(t, newFileSink(t, c.file), req))
}

// ckptFile is a ckpt-file being written: a temporary file that finish renames to its final name.
// It holds references on the process's root and working directory, so that it can be finished off
// the task goroutine after the process has exited.
type ckptFile struct {
	vfsObj    *vfs.VirtualFilesystem
	creds     *auth.Credentials
	root, cwd vfs.VirtualDentry
	name, tmp string
	// tid is the freezing thread's, in the temporary file's name.
	tid int32
	// file is the temporary file, open for writing.
	file *vfs.FileDescription
}

// createCkptFile unlinks the old ckpt-file of t's process under policy p and creates the temporary
// file the new image is written to (O_EXCL, mode 0600, in the same directory).
//
// Preconditions: running on t's task goroutine.
func createCkptFile(t *kernel.Task, p Policy) (*ckptFile, error) {
	c, err := resolveCkptFile(t, p)
	if err != nil {
		return nil, err
	}
	if err := c.create(t); err != nil {
		return nil, err
	}
	return c, nil
}

// resolveCkptFile returns the ckpt-file of t's process under policy p, not yet created: its name,
// and t's credentials, root and working directory to create it with. It does no I/O, so that a
// route that lets the process run before its image is written (freezeToCkptFile) does not keep
// it stopped while the file system is asked (an unlink and a create: a gofer round trip each).
// The caller must call create, or drop if it will not.
//
// Preconditions: running on t's task goroutine.
func resolveCkptFile(t *kernel.Task, p Policy) (*ckptFile, error) {
	name := ckptFileName(t, p)
	if name == "" {
		return nil, fmt.Errorf("empty ckpt-file name: %w", linuxerr.ENOENT)
	}
	return &ckptFile{
		vfsObj: t.Kernel().VFS(),
		creds:  t.Credentials(),
		root:   t.FSContext().RootDirectory(),
		cwd:    t.FSContext().WorkingDirectory(),
		name:   name,
		tid:    int32(t.ThreadID()),
	}, nil
}

// create unlinks the old ckpt-file and creates the temporary file the image is written to. On
// failure it drops c's references (c is then unusable).
func (c *ckptFile) create(ctx context.Context) error {
	if err := c.vfsObj.UnlinkAt(ctx, c.creds, c.pop(c.name)); err != nil && !linuxerr.Equals(linuxerr.ENOENT, err) {
		c.drop(ctx)
		return fmt.Errorf("unlinking the old image %q: %w", c.name, err)
	}
	dir, base := path.Split(c.name)
	var err error
	for range 8 {
		c.tmp = fmt.Sprintf("%s.%s.tmp-%d-%d", dir, base, c.tid, tempSeq.Add(1))
		c.file, err = c.vfsObj.OpenAt(ctx, c.creds, c.pop(c.tmp), &vfs.OpenOptions{
			Flags: linux.O_WRONLY | linux.O_CREAT | linux.O_EXCL | linux.O_LARGEFILE | linux.O_CLOEXEC,
			Mode:  ckptFileMode,
		})
		if !linuxerr.Equals(linuxerr.EEXIST, err) {
			break
		}
	}
	if err != nil {
		c.drop(ctx)
		return fmt.Errorf("creating %q: %w", c.tmp, err)
	}
	return nil
}

// pop returns the path operation for p, relative to the process's working directory.
func (c *ckptFile) pop(p string) *vfs.PathOperation {
	path := fspath.Parse(p)
	start := c.cwd
	if path.Absolute {
		start = c.root // vfs.PathOperation's invariant for absolute paths.
	}
	return &vfs.PathOperation{Root: c.root, Start: start, Path: path}
}

// finish closes the temporary file and, if err (the write's result) is nil, renames it to the
// ckpt-file's name; otherwise, or if the rename fails, it removes it. It returns err, or the
// rename's error.
func (c *ckptFile) finish(ctx context.Context, err error) error {
	c.file.DecRef(ctx)
	c.file = nil
	if err == nil {
		err = c.vfsObj.RenameAt(ctx, c.creds, c.pop(c.tmp), c.pop(c.name), &vfs.RenameOptions{})
		if err != nil {
			err = fmt.Errorf("renaming %q to %q: %w", c.tmp, c.name, err)
		}
	}
	if err != nil {
		if uerr := c.vfsObj.UnlinkAt(ctx, c.creds, c.pop(c.tmp)); uerr != nil {
			log.Warningf("ckpt: removing the partial image %q: %v", c.tmp, uerr)
		}
	}
	c.drop(ctx)
	return err
}

// drop releases the directory references.
func (c *ckptFile) drop(ctx context.Context) {
	c.root.DecRef(ctx)
	c.cwd.DecRef(ctx)
}
