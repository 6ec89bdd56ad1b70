package ckpt

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"reflect"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/sentry/fsimpl/eventfd"
	"gvisor.dev/gvisor/pkg/sentry/fsimpl/iouringfs"
	"gvisor.dev/gvisor/pkg/sentry/fsimpl/signalfd"
	"gvisor.dev/gvisor/pkg/sentry/fsimpl/timerfd"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/kernel/pipe"
	"gvisor.dev/gvisor/pkg/sentry/socket"
	"gvisor.dev/gvisor/pkg/sentry/socket/unix"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// Objects (image format 1.2, docs/image-format.md §4.3): kernel objects that a thaw rebuilds
// instead of reopening by path. captureFiles hands every fd to an objectCollector, which asks
// captureObjectOf whether the file is such an object and groups the fds by object identity (a pipe's
// two ends are one object) and by open file description (dup'd fds share one). Each kind's capture
// and thaw live side by side in obj_<kind>.go.

// objectIdentity is what groups the descriptions of one object: a pointer to the sentry's object
// (the pipe, the socket endpoint, the eventfd's description).
type objectIdentity any

// captureObjectOf returns the identity and state of the object behind file, or ok false if the image
// does not store files of its kind as objects (they are reopened by path or get a placeholder).
// Called once per open file description, with the process stopped.
//
// Preconditions: running on t's task goroutine.
func captureObjectOf(t *kernel.Task, file *vfs.FileDescription) (id objectIdentity, body imgfmt.ObjectBody, ok bool, err error) {
	switch impl := file.Impl().(type) {
	case *eventfd.EventFileDescription:
		body, err := captureEventFD(impl)
		return impl, body, true, err
	case *vfs.EpollInstance:
		body, err := captureEpoll(t, impl)
		return impl, body, true, err
	case *timerfd.TimerFileDescription:
		body, err := captureTimerFD(t, impl)
		return impl, body, true, err
	case *vfs.Inotify:
		body, err := captureInotify(t, impl)
		return impl, body, true, err
	case *signalfd.SignalFileDescription:
		return impl, captureSignalFD(impl), true, nil
	case *iouringfs.FileDescription:
		return nil, nil, false, fmt.Errorf("an io_uring instance cannot be frozen: %w", errUnsupportedObject)
	case *pipe.VFSPipeFD:
		id, body, err := capturePipe(t, file, impl)
		return id, body, true, err
	case *unix.Socket:
		id, body, err := captureUnixSocket(t, impl)
		return id, body, true, err
	case socket.Socket: // Keep after concrete socket types: it matches every family.
		if id, body, ok, err := captureInetSocket(t, file, impl); ok || err != nil {
			return id, body, ok, err
		}
		return captureSocketStub(impl) // obj_sockstub.go

	default:
		if id, body, ok, err := captureNamingObject(t, file); ok || err != nil {
			return id, body, ok, err
		}
		return captureFileData(t, file)
	}
}

// descriptionAdder is an object body whose descriptions each carry their own state (a connection's
// two sockets): the body captured from a further description is handed to the first one's.
type descriptionAdder interface {
	AddDescription(imgfmt.ObjectBody) error
}

// objectCollector builds Process.Objects while captureFiles walks the fd table.
type objectCollector struct {
	objects []imgfmt.Object
	// byID maps an object identity to its index in objects.
	byID map[objectIdentity]int
	// descs maps each open file description seen to its object's index and description number.
	descs map[*vfs.FileDescription]objectDesc
}

type objectDesc struct {
	object int
	desc   uint32
}

// add records fd if its file is an object, and reports whether it was.
func (c *objectCollector) add(t *kernel.Task, fd int32, file *vfs.FileDescription) (bool, error) {
	if d, ok := c.descs[file]; ok {
		o := &c.objects[d.object]
		o.FDs = append(o.FDs, imgfmt.ObjectFD{FD: fd, Desc: d.desc})
		return true, nil
	}
	id, body, ok, err := captureObjectOf(t, file)
	if err != nil || !ok {
		return false, err
	}
	if c.byID == nil {
		c.byID = make(map[objectIdentity]int)
		c.descs = make(map[*vfs.FileDescription]objectDesc)
	}
	i, seen := c.byID[id]
	if !seen {
		i = len(c.objects)
		c.byID[id] = i
		c.objects = append(c.objects, imgfmt.Object{ID: uint32(i + 1), Key: objectKey(id), Body: body})
	}
	o := &c.objects[i]
	if m, ok := o.Body.(descriptionAdder); ok && seen {
		// Each description of this kind carries its own state (the two ends of a connection).
		if err := m.AddDescription(body); err != nil {
			return false, err
		}
	}
	d := objectDesc{object: i, desc: uint32(o.Descs())}
	c.descs[file] = d
	o.FDs = append(o.FDs, imgfmt.ObjectFD{FD: fd, Desc: d.desc})
	return true, nil
}

// objectKeySecret keys objectKey's hash. It is the only package state the object capture has: set
// once at start-up, never changed, so that the keys of one sandbox agree across freezes of its
// processes without exposing sentry heap addresses in images.
var objectKeySecret = func() [32]byte {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("ckpt: no randomness for object keys: %v", err))
	}
	return b
}()

// objectKey turns an object identity into the image's key: a keyed hash of its address (never 0).
func objectKey(id objectIdentity) uint64 {
	var b [40]byte
	copy(b[:], objectKeySecret[:])
	binary.LittleEndian.PutUint64(b[32:], uint64(reflect.ValueOf(id).Pointer()))
	sum := sha256.Sum256(b[:])
	return binary.LittleEndian.Uint64(sum[:]) | 1
}
