package ckpt

import (
	"fmt"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/memmap"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// errUnsupportedObject marks an object the image cannot hold or a thaw cannot rebuild (a host-backed
// eventfd, ...): the freeze or thaw fails with EOPNOTSUPP rather than silently losing it.
var errUnsupportedObject = linuxerr.EOPNOTSUPP

// thawedObject is one object rebuilt by the prepare phase of a thaw.
type thawedObject struct {
	// files holds one open file description per description number of the object, each with a
	// reference that the thaw plan owns.
	files []*vfs.FileDescription
	// commit, if not nil, runs at commit after the fds are installed (for state that belongs to
	// the process rather than to an fd). It must not fail for reasons the image controls.
	commit func(t *kernel.Task) error
	// afterThreads, if not nil, runs at the very end of the commit, once every thread of the image
	// exists (for state that names threads: a SIGEV_THREAD_ID timer). tids maps the image's TIDs
	// to the new ones. It must not fail for reasons the image controls.
	afterThreads func(t *kernel.Task, tids map[int32]kernel.ThreadID) error
	// mapInto, if not nil, maps the object for one of its MapObject mappings (at commit): opts
	// is the mapping's address, length, protection and name, to complete and pass to MMap.
	mapInto func(t *kernel.Task, mp *imgfmt.Mapping, opts memmap.MMapOpts) error
	// drop, if not nil, releases what the object holds besides files (run by release).
	drop func(t *kernel.Task)
	// timer is set for a POSIX timer (obj_posixtimer.go), for its pending signal.
	timer *thawedTimer
	// undo, if not nil, takes back what the prepare phase created outside the process (a SysV
	// object in the IPC namespace) when the thaw does not reach commitObjects.
	undo func(t *kernel.Task)
}

func (o *thawedObject) release(t *kernel.Task) {
	if o.undo != nil {
		o.undo(t)
		o.undo = nil
	}
	for i, f := range o.files {
		if f != nil {
			f.DecRef(t)
			o.files[i] = nil
		}
	}
	if o.drop != nil {
		o.drop(t)
		o.drop = nil
	}
}

// objectNeedsFiles reports whether objects of kind k refer to the process's other fds (an epoll
// instance's interest list) and are therefore rebuilt after every other fd is prepared.
func objectNeedsFiles(k imgfmt.ObjectKind) bool {
	return k == imgfmt.ObjEpoll
}

// objectDeps returns the fds whose thawed files o's rebuild needs (an epoll instance's watched
// fds), for objects for which objectNeedsFiles is true.
func objectDeps(o *imgfmt.Object) []int32 {
	if b, ok := o.Body.(*imgfmt.EpollObject); ok {
		return epollDeps(b)
	}
	return nil
}

// thawObject rebuilds o. fds holds the prepared file of every fd that does not belong to an object
// needing files (only objects for which objectNeedsFiles is true may look at it).
//
// Preconditions: running on t's task goroutine, in the prepare phase (nothing of the caller has
// been changed yet).
func thawObject(t *kernel.Task, p *imgfmt.Process, o *imgfmt.Object, fds map[int32]*vfs.FileDescription) (*thawedObject, error) {
	var (
		th  *thawedObject
		err error
	)
	switch b := o.Body.(type) {
	case *imgfmt.EventFDObject:
		th, err = thawEventFD(t, p, o, b)
	case *imgfmt.PipeObject:
		th, err = thawPipe(t, p, o, b)
	case *imgfmt.TimerFDObject:
		th, err = thawTimerFD(t, p, o, b)
	case *imgfmt.SignalFDObject:
		th, err = thawSignalFD(t, p, o, b)
	case *imgfmt.EpollObject:
		th, err = thawEpoll(t, p, o, b, fds)
	case *imgfmt.PosixTimerObject:
		th, err = thawPosixTimer(t, p, o, b)
	case *imgfmt.SysVSemObject:
		th, err = thawSysVSem(t, b)
	case *imgfmt.SysVMsgObject:
		th, err = thawSysVMsg(t, b)
	case *imgfmt.PendingSignalsObject:
		th = &thawedObject{} // Sent with the pending sets (resendPending).
	case *imgfmt.InotifyObject:
		th, err = thawInotify(t, p, o, b)
	case *imgfmt.TerminalObject:
		th, err = thawTerminal(t, p, o, b)
	case *imgfmt.ProcAttrsObject:
		th, err = thawProcAttrs(t, p, b)
	case *imgfmt.ProcFileObject:
		th, err = thawProcFile(t, p, o, b)
	case *imgfmt.NamespaceObject:
		th, err = thawNamespace(t, p, o, b)
	case *imgfmt.FileDataObject:
		th, err = thawFileData(t, p, o, b)
	case *imgfmt.UnixSocketObject:
		th, err = thawUnixSocket(t, p, o, b)
	case *imgfmt.InetSocketObject:
		th, err = thawInetSocket(t, p, o, b)
	case *imgfmt.SocketStubObject:
		th, err = thawSocketStub(t, p, o, b)
	case *imgfmt.SysVShmObject:
		th, err = thawSysVShm(t, b)
	default:
		return nil, fmt.Errorf("object %d: kind %d cannot be thawed: %w", o.ID, o.Kind(), errUnsupportedObject)
	}
	if err != nil {
		return nil, fmt.Errorf("object %d (kind %d): %w", o.ID, o.Kind(), err)
	}
	if len(th.files) != o.Descs() {
		th.release(t)
		return nil, fmt.Errorf("object %d (kind %d): rebuilt %d open file descriptions, the image has %d", o.ID, o.Kind(), len(th.files), o.Descs())
	}
	return th, nil
}

// descStatusFlags returns the status flags (F_GETFL) of o's description desc: those of its first fd.
func descStatusFlags(p *imgfmt.Process, o *imgfmt.Object, desc uint32) uint32 {
	for _, f := range o.FDs {
		if f.Desc == desc {
			if i := fileIndexOf(p, f.FD); i >= 0 {
				return p.Files[i].StatusFlags
			}
		}
	}
	return 0
}

// fileIndexOf returns the index in p.Files of fd, or -1.
func fileIndexOf(p *imgfmt.Process, fd int32) int {
	for i := range p.Files {
		if p.Files[i].FD == fd {
			return i
		}
	}
	return -1
}

// commitObjects runs the commit step of every object that has one, in image order.
//
// Preconditions: running on t's task goroutine, at commit, after the fds are installed.
func (p *thawPlan) commitObjects(t *kernel.Task) error {
	for _, o := range p.objects {
		if o != nil {
			o.undo = nil // From here on, what the objects created belongs to the thawed process.
		}
	}
	for i, o := range p.objects {
		if o != nil && o.commit != nil {
			if err := o.commit(t); err != nil {
				return fmt.Errorf("object %d: %w", i+1, err)
			}
		}
	}
	return nil
}

// objectsAfterThreads runs the afterThreads step of every object that has one, in image order.
//
// Preconditions: running on t's task goroutine, at the end of the commit, every thread created.
func (p *thawPlan) objectsAfterThreads(t *kernel.Task) error {
	for i, o := range p.objects {
		if o != nil && o.afterThreads != nil {
			if err := o.afterThreads(t, p.newTIDs); err != nil {
				return fmt.Errorf("object %d: %w", i+1, err)
			}
		}
	}
	return nil
}
