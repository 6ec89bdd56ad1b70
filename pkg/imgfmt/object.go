package imgfmt

import "fmt"

// This file holds the model and the generic part of the object notes (format 1.2): kernel objects
// that fds (or the process itself) refer to and that a thaw rebuilds rather than reopens by path —
// pipes, sockets, event fds, unlinked files, timers, IPC. Each kind's body lives in its own file
// (obj_<kind>.go) with its encoder, decoder and checks; docs/image-format.md describes each byte.

// ObjectKind says what an object note describes and how its body is laid out.
type ObjectKind uint32

// Object kinds. The numbers are part of the format; every kind listed has a body type below or in
// an obj_<kind>.go file. Numbers are reserved here for the kinds still being built so that they
// never change once images carry them.
const (
	ObjEventFD        ObjectKind = 1  // eventfd: count and semaphore mode.
	ObjPipe           ObjectKind = 2  // An anonymous pipe or a named FIFO with its buffered bytes.
	ObjUnixSocket     ObjectKind = 3  // An AF_UNIX socket.
	ObjInetSocket     ObjectKind = 4  // An AF_INET/AF_INET6 socket.
	ObjFileData       ObjectKind = 5  // An unlinked file or a memfd with its contents.
	ObjEpoll          ObjectKind = 6  // An epoll instance with its interest list.
	ObjTimerFD        ObjectKind = 7  // A timerfd.
	ObjSignalFD       ObjectKind = 8  // A signalfd.
	ObjInotify        ObjectKind = 9  // An inotify instance.
	ObjPosixTimer     ObjectKind = 10 // A POSIX interval timer (process-wide, no fd).
	ObjSysVShm        ObjectKind = 11 // A SysV shared memory segment.
	ObjSysVSem        ObjectKind = 12 // A SysV semaphore set.
	ObjSysVMsg        ObjectKind = 13 // A SysV message queue.
	ObjTerminal       ObjectKind = 14 // A terminal (pty master or slave, /dev/tty).
	ObjProcAttrs      ObjectKind = 15 // Process attributes that are not identity (umask, ...).
	ObjProcFile       ObjectKind = 16 // A file under /proc/<own pid>/ or /proc/self/.
	ObjNamespace      ObjectKind = 17 // An nsfs file (/proc/self/ns/*).
	ObjPendingSignals ObjectKind = 18 // The exact siginfo of pending signals (process-wide).
	ObjSocketStub     ObjectKind = 19 // A socket whose state is not kept: its family, type, protocol.
	objKindLimit      ObjectKind = 20 // One past the last kind number in use.
	objKindUnknown    ObjectKind = 0
)

// Object is one kernel object of the process (an object note).
type Object struct {
	// ID is the object's number in the image: its index in Process.Objects plus one.
	ID uint32
	// Key identifies the underlying object across the images of one freeze (the same pipe seen by
	// two processes has the same Key in both images); 0 when unknown. It has no meaning across
	// freezes.
	Key uint64
	// FDs are this process's fds that refer to the object, sorted by fd. Every fd appears in at
	// most one object.
	FDs []ObjectFD
	// Body is the kind-specific state; Body.Kind() is the object's kind.
	Body ObjectBody
}

// Kind returns the object's kind.
func (o *Object) Kind() ObjectKind {
	if o.Body == nil {
		return objKindUnknown
	}
	return o.Body.Kind()
}

// ObjectFD is one fd that refers to an object.
type ObjectFD struct {
	FD int32
	// Desc numbers the object's open file descriptions from 0: fds with the same Desc share one
	// description (dup, fork) and with it the offset and status flags; a pipe's read and write ends
	// are two descriptions of one object.
	Desc uint32
}

// ObjectBody is the kind-specific part of an object note. Only this package implements it.
type ObjectBody interface {
	// Kind returns the kind number written in the note.
	Kind() ObjectKind
	// encode appends the body's bytes.
	encode(w *wbuf)
	// check returns why the body is not valid for process p and object o, or "".
	check(p *Process, o *Object) string
	// describe returns the body's state in one line for `inspect`.
	describe() string
}

// decodeObjectBody reads the body of a kind-k object note; r must end right after it. An unknown
// kind is a format error.
func decodeObjectBody(k ObjectKind, r *rbuf) ObjectBody {
	switch k {
	case ObjEventFD:
		return decodeEventFD(r)
	case ObjPipe:
		return decodePipe(r)
	case ObjEpoll:
		return decodeEpoll(r)
	case ObjTimerFD:
		return decodeTimerFD(r)
	case ObjSignalFD:
		return decodeSignalFD(r)
	case ObjPosixTimer:
		return decodePosixTimer(r)
	case ObjSysVSem:
		return decodeSysVSem(r)
	case ObjSysVMsg:
		return decodeSysVMsg(r)
	case ObjTerminal:
		return decodeTerminal(r)
	case ObjInotify:
		return decodeInotify(r)
	case ObjPendingSignals:
		return decodePendingSignals(r)
	case ObjProcAttrs:
		return decodeProcAttrs(r)
	case ObjProcFile:
		return decodeProcFile(r)
	case ObjNamespace:
		return decodeNamespace(r)
	case ObjFileData:
		return decodeFileData(r)
	case ObjSysVShm:
		return decodeSysVShm(r)
	case ObjUnixSocket:
		return decodeUnixSocket(r)
	case ObjInetSocket:
		return decodeInetSocket(r)
	case ObjSocketStub:
		return decodeSocketStub(r)
	}
	r.fail("unknown object kind %d", k)
	return nil
}

// objectKindName names k in summaries and errors.
func objectKindName(k ObjectKind) string {
	names := map[ObjectKind]string{
		ObjEventFD: "eventfd", ObjPipe: "pipe", ObjUnixSocket: "unix-socket", ObjInetSocket: "inet-socket",
		ObjFileData: "file-data", ObjEpoll: "epoll", ObjTimerFD: "timerfd", ObjSignalFD: "signalfd",
		ObjInotify: "inotify", ObjPosixTimer: "posix-timer", ObjSysVShm: "sysv-shm", ObjSysVSem: "sysv-sem",
		ObjSysVMsg: "sysv-msg", ObjTerminal: "terminal", ObjProcAttrs: "process-attributes",
		ObjProcFile: "proc-file", ObjNamespace: "namespace", ObjPendingSignals: "pending-signals",
		ObjSocketStub: "socket-stub",
	}
	if n, ok := names[k]; ok {
		return n
	}
	return fmt.Sprintf("kind-%d", k)
}

// encodeObject writes an object note's descriptor: layout, kind, id, fd count, key, the fds, the body.
func encodeObject(d *wbuf, o *Object) {
	d.u32(noteLayoutVersion)
	d.u32(uint32(o.Kind()))
	d.u32(o.ID)
	d.u32(uint32(len(o.FDs)))
	d.u64(o.Key)
	for _, f := range o.FDs {
		d.i32(f.FD)
		d.u32(f.Desc)
	}
	o.Body.encode(d)
}

// decodeObject parses one object note's descriptor.
func decodeObject(r *rbuf) (Object, error) {
	var o Object
	ownVersion(r)
	kind := ObjectKind(r.u32())
	o.ID = r.u32()
	nfds := r.u32()
	o.Key = r.u64()
	if r.err == nil && (nfds > MaxFDs || int64(nfds)*objectFDSize > int64(len(r.b)-r.off)) {
		r.fail("%d fds do not fit in the note", nfds)
	}
	for i := 0; r.err == nil && i < int(nfds); i++ {
		o.FDs = append(o.FDs, ObjectFD{FD: r.i32(), Desc: r.u32()})
	}
	if r.err == nil {
		o.Body = decodeObjectBody(kind, r)
	}
	if err := r.end(); err != nil {
		return Object{}, err
	}
	return o, nil
}

// validateObjects checks the object list of p: ids in order, each fd an fd of p referred to by at
// most one object, descriptions numbered densely from 0, and each body's own checks.
func validateObjects(p *Process, fail func(part string, idx int, format string, args ...any) error) error {
	if len(p.Objects) > MaxObjects {
		return fail(partObject, -1, "%d objects exceed %d", len(p.Objects), MaxObjects)
	}
	fdIndex := make(map[int32]int, len(p.Files))
	for i := range p.Files {
		fdIndex[p.Files[i].FD] = i
	}
	owner := make(map[int32]int)
	for i := range p.Objects {
		o := &p.Objects[i]
		if o.Body == nil {
			return fail(partObject, i, "no body")
		}
		if k := o.Kind(); k <= objKindUnknown || k >= objKindLimit {
			return fail(partObject, i, "unknown kind %d", k)
		}
		if o.ID != uint32(i+1) {
			return fail(partObject, i, "id %d, want %d (ids number the objects from 1 in order)", o.ID, i+1)
		}
		var maxDesc uint32
		seen := make(map[uint32]bool)
		for j, f := range o.FDs {
			if j > 0 && f.FD <= o.FDs[j-1].FD {
				return fail(partObject, i, "fd %d is not above the previous fd %d", f.FD, o.FDs[j-1].FD)
			}
			if _, ok := fdIndex[f.FD]; !ok {
				return fail(partObject, i, "fd %d is not an fd of the process", f.FD)
			}
			if prev, dup := owner[f.FD]; dup {
				return fail(partObject, i, "fd %d also belongs to object %d", f.FD, prev+1)
			}
			owner[f.FD] = i
			if f.Desc >= uint32(len(o.FDs)) {
				return fail(partObject, i, "fd %d: description %d out of range", f.FD, f.Desc)
			}
			seen[f.Desc] = true
			maxDesc = max(maxDesc, f.Desc)
		}
		if len(o.FDs) > 0 && len(seen) != int(maxDesc)+1 {
			return fail(partObject, i, "descriptions are not numbered densely from 0")
		}
		if msg := o.Body.check(p, o); msg != "" {
			return fail(partObject, i, "%s: %s", objectKindName(o.Kind()), msg)
		}
	}
	return nil
}

// ObjectOf returns the object fd refers to and the fd's description number, or nil.
func (p *Process) ObjectOf(fd int32) (*Object, uint32) {
	for i := range p.Objects {
		for _, f := range p.Objects[i].FDs {
			if f.FD == fd {
				return &p.Objects[i], f.Desc
			}
		}
	}
	return nil, 0
}

// fileIndex returns the index in p.Files of fd, or -1.
func (p *Process) fileIndex(fd int32) int {
	for i := range p.Files {
		if p.Files[i].FD == fd {
			return i
		}
	}
	return -1
}

// Descs returns how many open file descriptions o's fds name.
func (o *Object) Descs() int {
	n := 0
	for _, f := range o.FDs {
		n = max(n, int(f.Desc)+1)
	}
	return n
}
