package ckpt

import (
	"fmt"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/sentry/fsimpl/signalfd"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// signalfd (ObjSignalFD): the mask is exported (Mask), and signalfd.New makes one. A signalfd
// reads the signals of the task that made it; the thawed one belongs to the thawing task (the
// process's main thread after the thaw), whichever thread made the original. The pending signals
// it would read are the process's, restored with the signals note.

// captureSignalFD records a signalfd's mask.
func captureSignalFD(sfd *signalfd.SignalFileDescription) *imgfmt.SignalFDObject {
	return &imgfmt.SignalFDObject{Mask: uint64(sfd.Mask())}
}

// thawSignalFD makes a signalfd with the recorded mask for t.
func thawSignalFD(t *kernel.Task, p *imgfmt.Process, o *imgfmt.Object, body *imgfmt.SignalFDObject) (*thawedObject, error) {
	f, err := signalfd.New(t.Kernel().VFS(), t, linux.SignalSet(body.Mask), linux.O_RDWR|descStatusFlags(p, o, 0)&linux.O_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("new signalfd: %w", err)
	}
	return &thawedObject{files: []*vfs.FileDescription{f}}, nil
}
