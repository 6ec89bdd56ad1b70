package ckpt

import (
	"fmt"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/sentry/fsimpl/eventfd"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// eventfd: the counter and the semaphore mode have no getter; both are read through their
// stateify fields (stateify_fields.go). The mode never changes after creation; the counter is read
// without the eventfd's lock, which is exact for the frozen process (its threads are stopped) and
// racy only against a writer in another process sharing the eventfd, which could equally have
// written just after the freeze. A host-backed eventfd (hostfd >= 0, used for passthrough to host
// devices) keeps its count on the host: refused.

// captureEventFD records an eventfd's count and mode.
func captureEventFD(efd *eventfd.EventFileDescription) (*imgfmt.EventFDObject, error) {
	host, err := stateInt(efd, "hostfd")
	if err != nil {
		return nil, err
	}
	if host >= 0 {
		return nil, fmt.Errorf("eventfd backed by a host fd: %w", errUnsupportedObject)
	}
	count, err := stateUint(efd, "val")
	if err != nil {
		return nil, err
	}
	sem, err := stateBool(efd, "semMode")
	if err != nil {
		return nil, err
	}
	return &imgfmt.EventFDObject{Count: count, Semaphore: sem}, nil
}

// thawEventFD makes a new eventfd with the recorded count and mode.
func thawEventFD(t *kernel.Task, p *imgfmt.Process, o *imgfmt.Object, e *imgfmt.EventFDObject) (*thawedObject, error) {
	status := descStatusFlags(p, o, 0)
	f, err := eventfd.New(t, t.Kernel().VFS(), e.Count, e.Semaphore, status&(linux.O_NONBLOCK|linux.O_ACCMODE))
	if err != nil {
		return nil, err
	}
	return &thawedObject{files: []*vfs.FileDescription{f}}, nil
}
