package ckpt

import (
	"fmt"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/vfsfh"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/vfsfh/sentryfh"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/sentry/fsimpl/eventfd"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// captureFiles records the fd table of t's process: for every fd its number, close-on-exec flag,
// status flags, offset (-1 when not seekable), kind and description, and a handle for the kinds a
// thaw can reopen by path. Every fd that refers to the image being written (image, which may be
// nil) is marked IsImage. Files that are kernel objects the image stores (freeze_capture_objects.go) are
// also returned as objects.
//
// Preconditions: running on t's task goroutine.
func captureFiles(t *kernel.Task, image *vfs.FileDescription) ([]imgfmt.File, []imgfmt.Object, error) {
	fdt := t.FDTable()
	if fdt == nil {
		return nil, nil, nil
	}
	var (
		files   []imgfmt.File
		objects objectCollector
		err     error
	)
	// ForEach visits fds in increasing order and holds a reference on each file during fn.
	fdt.ForEach(t, func(fd int32, file *vfs.FileDescription, flags kernel.FDFlags) bool {
		var f imgfmt.File
		f, err = captureFile(t, fd, file, flags)
		if err != nil {
			return false
		}
		f.IsImage = image != nil && file == image
		if !f.IsImage {
			if _, err = objects.add(t, fd, file); err != nil {
				err = fmt.Errorf("fd %d (%s): %w", fd, f.Desc, err)
				return false
			}
		}
		files = append(files, f)
		return true
	})
	if err != nil {
		return nil, nil, err
	}
	return files, joinTCPQueuedClients(joinQueuedClients(objects.objects)), nil // obj_unix_accept.go, obj_inet_accept.go
}

// captureFile records one fd.
func captureFile(t *kernel.Task, fd int32, file *vfs.FileDescription, flags kernel.FDFlags) (imgfmt.File, error) {
	h, err := sentryfh.FromFD(t, file)
	if err != nil {
		return imgfmt.File{}, fmt.Errorf("fd %d: %w", fd, err)
	}
	f := imgfmt.File{
		FD:          fd,
		StatusFlags: file.StatusFlags(),
		Offset:      -1,
		Kind:        fileKind(file, h),
		Desc:        h.Path,
	}
	if flags.CloseOnExec {
		f.FDFlags = linux.FD_CLOEXEC
	}
	switch f.Kind {
	case imgfmt.FileRegular, imgfmt.FileDirectory, imgfmt.FileCharDev, imgfmt.FileBlockDev:
		if off, err := file.Seek(t, 0, linux.SEEK_CUR); err == nil {
			f.Offset = off
		}
	}
	switch f.Kind {
	case imgfmt.FileRegular, imgfmt.FileDirectory, imgfmt.FileCharDev, imgfmt.FileBlockDev, imgfmt.FileSymlink:
		f.Handle = h.ToImage()
	case imgfmt.FileFIFO:
		if h.Reopenable() { // A named pipe; an anonymous one is "pipe:[N]".
			f.Handle = h.ToImage()
		}
	}
	return f, nil
}

// fileKind classifies the object behind an fd by its file type, and anonymous inodes by their
// implementation.
func fileKind(file *vfs.FileDescription, h vfsfh.Handle) imgfmt.FileKind {
	switch h.Type() {
	case vfsfh.ModeRegular:
		return imgfmt.FileRegular
	case vfsfh.ModeDir:
		return imgfmt.FileDirectory
	case vfsfh.ModeCharDev:
		return imgfmt.FileCharDev
	case vfsfh.ModeBlockDev:
		return imgfmt.FileBlockDev
	case vfsfh.ModeFIFO:
		return imgfmt.FileFIFO
	case vfsfh.ModeSocket:
		return imgfmt.FileSocket
	case vfsfh.ModeSymlink:
		return imgfmt.FileSymlink
	}
	if _, ok := file.Impl().(*eventfd.EventFileDescription); ok {
		return imgfmt.FileEventFD
	}
	return imgfmt.FileOther
}
