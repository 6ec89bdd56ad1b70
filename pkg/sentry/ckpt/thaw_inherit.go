package ckpt

import (
	"fmt"

	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// The inherit hook of a thaw (thawRequest.inherit): an fd of the image can take a file the thawing
// process already has open instead of what the image records (a reopened path or a placeholder).
// A tree restore uses it to give every process the new container's stdio where the original had
// the old container's, and to hand each process its end of an object created once for several
// processes (a shared open file description: same offset for all). The restorer puts those files
// into the thawing process's fd table before the thaw (at any free number) and maps image fd →
// that number; the thaw then closes every other fd of the thawer.

// inheritedFile returns a reference on the caller's fd src for an inherited image fd.
func inheritedFile(t *kernel.Task, src int32) (*vfs.FileDescription, error) {
	f := t.GetFile(src)
	if f == nil {
		return nil, fmt.Errorf("inherited fd %d is not open: %w", src, linuxerr.EBADF)
	}
	return f, nil
}
