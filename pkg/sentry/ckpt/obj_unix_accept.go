package ckpt

import (
	"fmt"
	"reflect"
	"slices"
	"unsafe"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/socket"
	"gvisor.dev/gvisor/pkg/sentry/socket/control"
	"gvisor.dev/gvisor/pkg/sentry/socket/unix/transport"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// Connections in a listening AF_UNIX socket's accept queue (image format 1.5, docs/sockets.md).
//
// Freeze: a connect(2) to a listener makes the server's end of the connection at once and puts it
// in the listener's accept queue (transport's acceptedChan, unexported) until accept(2) takes it.
// readAcceptQueue lists those ends without taking them: under the listener's lock (which accept,
// connect, listen and close all hold while they touch the queue) it receives every queued end and
// sends it back in the same order. Each end's connection key is the one the client's own object
// gets (unixConnID of the two queues), so the client end — if the image has it — is found by
// key; joinQueuedClients makes it an end of the listener's object, flagged UnixQueuedClient.
//
// Thaw (thawUnixAcceptQueue): the listener is rebuilt as before, then each client end is a new
// socket connected to it in the recorded order, which puts a fresh server end in the accept queue,
// and the bytes the client had sent are sent again. accept(2) then returns the connections in their
// order, with their data. Entries whose client is not in the image are not rebuilt: the listener's
// accept queue holds only the rebuilt ones.

// readAcceptQueue returns the connections waiting in the accept queue of the listening endpoint
// ep, oldest first, each with its key and the queue of its server end. inFlight records fds in
// flight (may be nil).
func readAcceptQueue(ep transport.Endpoint, inFlight func(*vfs.FileDescription) *imgfmt.UnixRightsFile) ([]imgfmt.UnixPendingConn, error) {
	ce, ok := ep.(transport.ConnectingEndpoint)
	if !ok {
		return nil, nil
	}
	queued, err := drainAcceptQueue(ce)
	if err != nil {
		return nil, err
	}
	out := make([]imgfmt.UnixPendingConn, 0, len(queued))
	for i, ne := range queued {
		st, err := readUnixEndpoint(ne, inFlight)
		if err != nil {
			return nil, fmt.Errorf("accept queue entry %d: %w", i, err)
		}
		if st.host || st.recvQueue == nil || st.sendQueue == nil {
			return nil, fmt.Errorf("accept queue entry %d is not connected through sentry queues (gVisor changed?)", i)
		}
		out = append(out, imgfmt.UnixPendingConn{Key: objectKey(unixConnID(st.recvQueue, st.sendQueue)), Queue: st.queue})
	}
	return out, nil
}

// drainAcceptQueue returns the endpoints in ce's accept queue in order, leaving the queue as it was.
func drainAcceptQueue(ce transport.ConnectingEndpoint) ([]transport.Endpoint, error) {
	ce.Lock()
	defer ce.Unlock()
	ch, ok, err := stateSub(reflect.ValueOf(ce), "acceptedChan")
	if err != nil || !ok {
		return nil, err
	}
	if ch.Kind() != reflect.Chan || !ch.CanAddr() {
		return nil, fmt.Errorf("acceptedChan is a %s (gVisor changed)", ch.Type())
	}
	if ch.IsNil() {
		return nil, nil
	}
	// The field is unexported: reflect refuses to receive through it, so take an exported view
	// of the same variable.
	chv := reflect.NewAt(ch.Type(), unsafe.Pointer(ch.UnsafeAddr())).Elem()
	var taken []reflect.Value
	for chv.Len() > 0 {
		v, ok := chv.TryRecv()
		if !ok {
			break
		}
		taken = append(taken, v)
	}
	var out []transport.Endpoint
	var bad error
	for _, v := range taken {
		if !chv.TrySend(v) {
			// Cannot happen: the lock keeps everyone else out and the capacity is unchanged.
			bad = fmt.Errorf("could not put an accept queue entry back")
		}
		ne, ok := v.Interface().(transport.Endpoint)
		if !ok {
			bad = fmt.Errorf("accept queue holds a %s (gVisor changed)", v.Type())
		}
		out = append(out, ne)
	}
	return out, bad
}

// pendingClient reports whether o is an object that can be a client waiting in an accept queue:
// one connected, connection-oriented end with nothing queued (its peer never sent anything).
func pendingClient(o *imgfmt.Object) bool {
	b, ok := o.Body.(*imgfmt.UnixSocketObject)
	if !ok || len(b.Ends) != 1 {
		return false
	}
	e := &b.Ends[0]
	return e.Flags&imgfmt.UnixConnected != 0 && e.Flags&(imgfmt.UnixConnectionless|imgfmt.UnixHost|imgfmt.UnixListening|imgfmt.UnixQueuedClient) == 0 && len(e.Queue) == 0
}

// joinQueuedClients makes each client end whose connection waits in the accept queue of a
// listener of the same image an end of the listener's object (UnixQueuedClient), removing its
// own object, and numbers the objects again. Called once the whole fd table is captured.
func joinQueuedClients(objects []imgfmt.Object) []imgfmt.Object {
	byKey := make(map[uint64]int)
	for i := range objects {
		if pendingClient(&objects[i]) {
			byKey[objects[i].Key] = i
		}
	}
	if len(byKey) == 0 {
		return objects
	}
	removed := make(map[int]bool)
	for i := range objects {
		l := &objects[i]
		b, ok := l.Body.(*imgfmt.UnixSocketObject)
		if !ok || len(b.Ends) != 1 || b.Ends[0].Flags&imgfmt.UnixAcceptQueue == 0 || !unixInstalled(l) {
			// A listener only at fds 0-2 is not rebuilt (they stay the thawer's): its clients
			// stay sockets whose peer is outside the image.
			continue
		}
		for idx, c := range b.Ends[0].AcceptQueue {
			j, ok := byKey[c.Key]
			if !ok || removed[j] || j == i {
				continue
			}
			cl := &objects[j]
			e := cl.Body.(*imgfmt.UnixSocketObject).Ends[0]
			if cl.Body.(*imgfmt.UnixSocketObject).Type != b.Type {
				continue
			}
			e.Flags |= imgfmt.UnixQueuedClient
			e.Pending = uint32(idx)
			desc := uint32(l.Descs())
			b.Ends = append(b.Ends, e)
			for _, f := range cl.FDs {
				l.FDs = append(l.FDs, imgfmt.ObjectFD{FD: f.FD, Desc: desc})
			}
			removed[j] = true
		}
		slices.SortFunc(l.FDs, func(a, b imgfmt.ObjectFD) int { return int(a.FD) - int(b.FD) })
	}
	return withoutRemoved(objects, removed) // obj_accept_merge.go
}

// thawUnixAcceptQueue rebuilds a listener whose object also has clients of its accept queue:
// the listener first (bound, listening), then each client connected to it in accept order with
// the bytes it had sent. files gets one file per end.
func thawUnixAcceptQueue(t *kernel.Task, p *imgfmt.Process, stype linux.SockType, b *imgfmt.UnixSocketObject, files []*vfs.FileDescription) (func(*kernel.Task) error, error) {
	li := b.AcceptListener()
	if li < 0 {
		return nil, fmt.Errorf("queued clients without a listener: %w", linuxerr.EINVAL)
	}
	l := &b.Ends[li]
	commit, err := thawUnixSingle(t, p, stype, l, files[li:li+1])
	if err != nil {
		return nil, err
	}
	bep, ok := sock(files[li]).Endpoint().(transport.BoundEndpoint)
	if !ok {
		return nil, fmt.Errorf("a listener that takes no connections: %w", errUnsupportedObject)
	}
	client := make(map[uint32]int, len(b.Ends)-1)
	for i := range b.Ends {
		if i != li {
			client[b.Ends[i].Pending] = i
		}
	}
	for idx, c := range l.AcceptQueue {
		i, ok := client[uint32(idx)]
		if !ok {
			continue // The client is not in the image: nothing to rebuild.
		}
		e := &b.Ends[i]
		f, serr := socket.New(t, linux.AF_UNIX, stype, 0)
		if serr != nil {
			return nil, fmt.Errorf("socket: %w", sockErrno(serr))
		}
		files[i] = f
		s := sock(f)
		if err := setUnixAddr(s, e.Addr); err != nil {
			return nil, fmt.Errorf("client %d: %w", idx, err)
		}
		// As connect(2) does: SO_PEERCRED of both ends names the thawing process.
		s.Endpoint().SetPeerCreds(control.MakeCreds(t))
		if serr := s.Endpoint().Connect(t, bep); serr != nil {
			return nil, fmt.Errorf("client %d: connecting to the listener: %w", idx, sockErrno(serr))
		}
		if err := refillFrom(t, s, c.Queue); err != nil {
			return nil, fmt.Errorf("client %d: %w", idx, err)
		}
		if err := applyUnixSockOpts(t, s, e.Options); err != nil {
			return nil, fmt.Errorf("client %d: %w", idx, err)
		}
		shutdownUnix(s, e)
	}
	for i, f := range files {
		if f == nil {
			// A client whose index is out of range or taken twice (a merged tree body; a
			// single image is checked by the decoder).
			return nil, fmt.Errorf("end %d is no client of the accept queue: %w", i, linuxerr.EINVAL)
		}
	}
	return commit, nil
}
