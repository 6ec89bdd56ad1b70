package ckpt

import (
	"container/list"
	"fmt"
	"reflect"
	"slices"
	"time"
	"unsafe"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/log"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/socket"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
	"gvisor.dev/gvisor/pkg/sync"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// Connections in a listening TCP socket's accept queue (image format 1.6, docs/sockets.md).
//
// Freeze: netstack completes a handshake on its own and puts the server's new endpoint in the
// listener's accept queue (tcp.Endpoint's unexported acceptQueue.endpoints, a container/list of
// *tcp.Endpoint guarded by the unexported acceptMu) until accept(2) takes it. No exported call
// lists it without taking, so tcpAcceptQueue walks the list under acceptMu, reached through
// reflection (acceptQueue and its field endpoints are checked against StateFields; acceptMu's
// type is checked) — docs/upstream-gaps.md. Each entry records its addresses and the bytes the
// client had sent (peeked). A client end of the same process (a connected socket whose peer is
// not an fd, recorded to be reset) whose addresses are an entry's, swapped, becomes a further end
// of the listener's object (joinTCPQueuedClients, flagged QueuedClient).
//
// Thaw (thawTCPAcceptQueue): the listener is rebuilt as before, then each client end is a new
// socket bound to its recorded address when that is free (else an ephemeral port) and connected to
// the listener in the recorded order; once its connection is in the accept queue the client sends
// the recorded bytes again. accept(2) then returns the connections in their order, with their data.
// Entries whose client is not in the image are not rebuilt.

// tcpAcceptQueue returns the endpoints waiting in the accept queue of the listener tep, oldest
// first, leaving the queue as it was.
func tcpAcceptQueue(tep *tcp.Endpoint) ([]*tcp.Endpoint, error) {
	l, mu, err := tcpAcceptList(tep)
	if err != nil {
		return nil, err
	}
	mu.Lock()
	defer mu.Unlock()
	out := make([]*tcp.Endpoint, 0, l.Len())
	for el := l.Front(); el != nil; el = el.Next() {
		ep, ok := el.Value.(*tcp.Endpoint)
		if !ok {
			return nil, fmt.Errorf("TCP accept queue holds a %T (gVisor changed)", el.Value)
		}
		out = append(out, ep)
	}
	return out, nil
}

// tcpAcceptList returns the list of tep's accept queue and the mutex that guards it.
func tcpAcceptList(tep *tcp.Endpoint) (*list.List, *sync.Mutex, error) {
	q, err := stateField(tep, "acceptQueue")
	if err != nil {
		return nil, nil, err
	}
	f, err := stateSubfield(q, "endpoints", reflect.Struct)
	if err != nil {
		return nil, nil, err
	}
	if f.Type() != reflect.TypeFor[list.List]() || !f.CanAddr() {
		return nil, nil, fmt.Errorf("tcp.Endpoint acceptQueue.endpoints is a %s (gVisor changed)", f.Type())
	}
	mu := reflect.ValueOf(tep).Elem().FieldByName("acceptMu")
	if !mu.IsValid() || mu.Type() != reflect.TypeFor[sync.Mutex]() || !mu.CanAddr() {
		return nil, nil, fmt.Errorf("tcp.Endpoint has no acceptMu mutex (gVisor changed: see docs/upstream-gaps.md)")
	}
	return (*list.List)(unsafe.Pointer(f.UnsafeAddr())), (*sync.Mutex)(unsafe.Pointer(mu.UnsafeAddr())), nil
}

// captureTCPAcceptQueue records the accept queue of the listening socket s of t's process. It
// first waits (at most a second) until the connections of the process's own clients are in the
// queue with the bytes they sent: netstack finishes a loopback handshake and delivers segments on
// its own goroutines, so a connect(2) or write(2) just before the freeze may still be on its way.
func captureTCPAcceptQueue(t *kernel.Task, s inetSocket) ([]imgfmt.InetPendingConn, error) {
	tep, ok := s.ep.(*tcp.Endpoint)
	if !ok {
		return nil, fmt.Errorf("TCP endpoint is a %T (gVisor changed)", s.ep)
	}
	settleAcceptQueue(t, s, tep)
	queued, err := tcpAcceptQueue(tep)
	if err != nil {
		return nil, err
	}
	var out []imgfmt.InetPendingConn
	for i, ep := range queued {
		local, lerr := ep.GetLocalAddress()
		remote, rerr := ep.GetRemoteAddress()
		if lerr != nil || rerr != nil {
			continue // Reset or closed while queued: accept(2) would not return it either.
		}
		c := imgfmt.InetPendingConn{Local: inetAddrFromTCPIP(local, s.family), Remote: inetAddrFromTCPIP(remote, s.family)}
		if c.Data, err = peekTCP(ep); err != nil {
			return nil, fmt.Errorf("accept queue entry %d: %w", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// ownClients returns the TCP sockets of t's process (established or half-closed) that are
// connected to the listener s and whose peer is not an fd of the process: the clients whose
// connection should be in s's accept queue.
func ownClients(t *kernel.Task, s inetSocket) []inetSocket {
	laddr, lerr := s.ep.GetLocalAddress()
	if lerr != nil {
		return nil
	}
	var out []inetSocket
	t.FDTable().ForEach(t, func(_ int32, file *vfs.FileDescription, _ kernel.FDFlags) bool {
		impl, ok := file.Impl().(socket.Socket)
		// Half-closed too: a client that wrote and then shut down writing (FIN_WAIT1/2) has its
		// bytes on their way like any other (a CI run caught the accept queue without them).
		if !ok || !tcpConnected(impl.State()) {
			return true
		}
		c, ok, err := asInetSocket(impl)
		if !ok || err != nil || !c.tcp() {
			return true
		}
		r, rerr := c.ep.GetRemoteAddress()
		if rerr != nil || r.Port != laddr.Port {
			return true
		}
		if wild := laddr.Addr.Len() == 0 || laddr.Addr.Unspecified(); wild && !isLoopback(unmapped(r.Addr)) || !wild && unmapped(r.Addr) != unmapped(laddr.Addr) {
			// A client of a wildcard listener is waited for only on the loopback: one connected
			// to the same port of another host (a proxy) must not hold up the freeze.
			return true
		}
		if peer, _ := findTCPPeer(t, file, c); peer.sock == nil {
			out = append(out, c)
		}
		return true
	})
	return out
}

// isLoopback reports whether a is a loopback address.
func isLoopback(a tcpip.Address) bool {
	return header.IsV4LoopbackAddress(a) || header.IsV6LoopbackAddress(a)
}

// unmapped returns a as IPv4 if it is a v4-mapped IPv6 address.
func unmapped(a tcpip.Address) tcpip.Address {
	if a.Len() == 16 {
		if b := a.AsSlice(); slices.Equal(b[:12], []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}) {
			return tcpip.AddrFrom4Slice(b[12:])
		}
	}
	return a
}

// settleAcceptQueue waits until every client of ownClients is in tep's accept queue and has no
// unacknowledged bytes, or a second has passed (a client whose connection was accepted and handed
// to another process is never there; logged).
func settleAcceptQueue(t *kernel.Task, s inetSocket, tep *tcp.Endpoint) {
	clients := ownClients(t, s)
	if len(clients) == 0 {
		return
	}
	settled := func() bool {
		q, err := tcpAcceptQueue(tep)
		if err != nil {
			return true
		}
		in := make(map[tcpip.FullAddress]bool, len(q))
		for _, ep := range q {
			if r, rerr := ep.GetRemoteAddress(); rerr == nil {
				in[tcpip.FullAddress{Addr: unmapped(r.Addr), Port: r.Port}] = true
			}
		}
		for _, c := range clients {
			l, lerr := c.ep.GetLocalAddress()
			if lerr != nil || !in[tcpip.FullAddress{Addr: unmapped(l.Addr), Port: l.Port}] || tcpSendUsed(c) > 0 {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(time.Second); !settled(); {
		if time.Now().After(deadline) {
			log.Warningf("ckpt: TCP listener: a client of the process is not in its accept queue (accepted elsewhere?) or has unacknowledged bytes")
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// joinTCPQueuedClients makes each client end (recorded to be reset: its peer is no fd) whose
// connection waits in the accept queue of a listener of the same image an end of the listener's
// object (QueuedClient), removing its own object, and numbers the objects again.
func joinTCPQueuedClients(objects []imgfmt.Object) []imgfmt.Object {
	clients := make(map[[2]inetAddrKey]int)
	for i := range objects {
		if e := tcpQueuedClientCandidate(&objects[i]); e != nil {
			clients[[2]inetAddrKey{addrKeyOf(e.Local), addrKeyOf(e.Remote)}] = i
		}
	}
	if len(clients) == 0 {
		return objects
	}
	removed := make(map[int]bool)
	for i := range objects {
		l := &objects[i]
		b, ok := l.Body.(*imgfmt.InetSocketObject)
		if !ok || len(b.Ends) != 1 || !b.Ends[0].HasAcceptQueue || !unixInstalled(l) {
			continue // A listener only at fds 0-2 is not rebuilt (they stay the thawer's).
		}
		for idx, c := range b.Ends[0].AcceptQueue {
			j, ok := clients[[2]inetAddrKey{addrKeyOf(c.Remote), addrKeyOf(c.Local)}]
			if !ok || removed[j] || j == i {
				continue
			}
			cl := &objects[j]
			e := cl.Body.(*imgfmt.InetSocketObject).Ends[0]
			e.State = imgfmt.InetConnected
			e.QueuedClient = true
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

// tcpQueuedClientCandidate returns o's end if o is a TCP socket that can be a client waiting in an
// accept queue: one end recorded to be reset (its peer is not an fd of its process).
func tcpQueuedClientCandidate(o *imgfmt.Object) *imgfmt.InetEnd {
	b, ok := o.Body.(*imgfmt.InetSocketObject)
	if !ok || len(b.Ends) != 1 {
		return nil
	}
	e := &b.Ends[0]
	if e.Type != uint16(linux.SOCK_STREAM) || e.State != imgfmt.InetReset || len(e.Remote.Addr) == 0 || e.Local.Port == 0 {
		return nil
	}
	return e
}

// thawTCPAcceptQueue rebuilds a listener whose object also has clients of its accept queue: the
// listener first, then each client connected to it in accept order with the bytes it had sent.
func thawTCPAcceptQueue(t *kernel.Task, b *imgfmt.InetSocketObject) ([]*vfs.FileDescription, error) {
	li := b.AcceptListener()
	if li < 0 {
		return nil, fmt.Errorf("queued clients without a listener: %w", linuxerr.EINVAL)
	}
	files := make([]*vfs.FileDescription, len(b.Ends))
	fail := func(err error) ([]*vfs.FileDescription, error) {
		for _, f := range files {
			if f != nil {
				f.DecRef(t)
			}
		}
		return nil, err
	}
	l := &b.Ends[li]
	lf, err := thawInetEnd(t, l)
	if err != nil {
		return nil, err
	}
	files[li] = lf
	ls, _, err := asInetSocket(lf.Impl().(socket.Socket))
	if err != nil {
		return fail(err)
	}
	tep, ok := ls.ep.(*tcp.Endpoint)
	if !ok {
		return fail(fmt.Errorf("TCP endpoint is a %T (gVisor changed)", ls.ep))
	}
	client := make(map[uint32]int, len(b.Ends)-1)
	for i := range b.Ends {
		if i != li {
			client[b.Ends[i].Pending] = i
		}
	}
	rebuilt := 0
	for idx, c := range l.AcceptQueue {
		i, ok := client[uint32(idx)]
		if !ok {
			continue // The client is not in the image: nothing to rebuild.
		}
		e := &b.Ends[i]
		cf, cs, err := connectQueuedClient(t, e)
		if err != nil {
			return fail(fmt.Errorf("client %d: %w", idx, err))
		}
		files[i] = cf
		sep, err := waitAccepted(tep, rebuilt)
		if err != nil {
			return fail(fmt.Errorf("client %d: %w", idx, err))
		}
		rebuilt++
		if err := refillStream(cs.ep, sep, c.Data); err != nil {
			return fail(fmt.Errorf("client %d: refilling its connection: %w", idx, err))
		}
		if err := refillStream(sep, cs.ep, e.Data); err != nil {
			return fail(fmt.Errorf("client %d: refilling it: %w", idx, err))
		}
		if err := restoreSockOptions(t, cs.sock, e.Options); err != nil {
			return fail(fmt.Errorf("client %d: %w", idx, err))
		}
		if e.ShutWrite {
			if serr := cs.sock.Shutdown(t, linux.SHUT_WR); serr != nil {
				return fail(fmt.Errorf("client %d: shutdown(SHUT_WR): %w", idx, sockErrno(serr)))
			}
			for deadline := time.Now().Add(inetSettleTimeout); sep.EndpointState() == tcp.StateEstablished; {
				if time.Now().After(deadline) {
					return fail(fmt.Errorf("client %d: the FIN did not arrive within %v", idx, inetSettleTimeout))
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	for i, f := range files {
		if f == nil {
			return fail(fmt.Errorf("end %d is no client of the accept queue: %w", i, linuxerr.EINVAL))
		}
	}
	return files, nil
}

// connectQueuedClient makes the client end e and connects it to the address it was connected to,
// from its recorded local address when that can be had (else from an ephemeral port).
func connectQueuedClient(t *kernel.Task, e *imgfmt.InetEnd) (*vfs.FileDescription, inetSocket, error) {
	cf, cs, err := newInetSocket(t, e)
	if err != nil {
		return nil, cs, err
	}
	// Buffer sizes before the handshake (they set the window scale), everything else later.
	if err := restoreSockOptions(t, cs.sock, bufferOptions(e.Options)); err != nil {
		cf.DecRef(t)
		return nil, cs, err
	}
	// SO_REUSEADDR for the bind only (the recorded options set it back): the old client's port may
	// still be in TIME_WAIT in the same sandbox.
	cs.ep.SocketOptions().SetReuseAddress(true)
	if serr := cs.sock.Bind(t, sockaddrBytes(int(e.Family), e.Local)); serr != nil {
		log.Infof("ckpt: a queued TCP client cannot have its port back (%s: %v): it gets an ephemeral one", e.Local, sockErrno(serr))
	}
	if err := connectUninterrupted(t, cs.sock, sockaddrBytes(int(e.Family), e.Remote)); err != nil {
		cf.DecRef(t)
		return nil, cs, fmt.Errorf("connecting to the listener %s: %w", e.Remote, err)
	}
	return cf, cs, nil
}

// waitAccepted waits until tep's accept queue holds more than n connections and returns entry n.
func waitAccepted(tep *tcp.Endpoint, n int) (*tcp.Endpoint, error) {
	for deadline := time.Now().Add(inetSettleTimeout); ; {
		q, err := tcpAcceptQueue(tep)
		if err != nil {
			return nil, err
		}
		if len(q) > n {
			return q[n], nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the connection did not reach the accept queue within %v", inetSettleTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}
