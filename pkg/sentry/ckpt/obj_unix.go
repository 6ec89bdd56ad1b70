package ckpt

import (
	"fmt"
	"unsafe"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/log"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/socket"
	"gvisor.dev/gvisor/pkg/sentry/socket/control"
	"gvisor.dev/gvisor/pkg/sentry/socket/unix"
	"gvisor.dev/gvisor/pkg/sentry/socket/unix/transport"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// AF_UNIX sockets (docs/sockets.md has the table of cases). Freeze records each socket's type,
// addresses, options, shutdown state, listen backlog and receive queue (obj_unix_state.go reads
// the queue without consuming it). The two sockets of one connection are one object with two
// descriptions, grouped by the connection's identity: the lower address of its two queues, which
// both ends compute alike. A connected socket whose peer is not in the image is an object with
// one description.
//
// Thaw rebuilds, all in the prepare phase:
//   - both ends: socket.Pair, each end's queue refilled by sending from the other end (one send
//     per message, so datagram and seqpacket boundaries are kept), then options and shutdowns;
//   - one connected end: a pair whose other end is closed after the refill — with one unread
//     byte in it, so that reads report ECONNRESET after the queued data, unless the socket's
//     receive side was already closed at freeze (then EOF, as before); writes fail with EPIPE;
//   - any other socket: socket.New, bound again (abstract names in the thawer's namespace,
//     paths recreated: a stale socket file left at the path is replaced, anything live or not a
//     socket → EADDRINUSE), listening again with its backlog; a datagram socket's queue is
//     refilled with each message's source address; a datagram socket connected to an address
//     reconnects at commit (if that fails it stays unconnected, logged).

// unixConnID returns the identity of the connection with queues a and b (either may be nil).
func unixConnID(a, b unsafe.Pointer) objectIdentity {
	if b == nil || (a != nil && uintptr(a) < uintptr(b)) {
		return a
	}
	return b
}

// captureUnixSocket records one AF_UNIX socket as a one-end body and returns the identity that
// groups it with its peer (when connected) or the socket itself.
func captureUnixSocket(t *kernel.Task, s *unix.Socket) (objectIdentity, *imgfmt.UnixSocketObject, error) {
	ep := s.Endpoint()
	_, stype, _ := s.Type()
	st, err := readUnixEndpoint(ep, func(f *vfs.FileDescription) *imgfmt.UnixRightsFile { return captureInFlight(t, f) })
	if err != nil {
		return nil, nil, fmt.Errorf("unix socket: %w", err)
	}
	_, connectioned := ep.(transport.ConnectingEndpoint)
	e := imgfmt.UnixSocketEnd{Options: captureUnixSockOpts(t, s)}
	local, _ := ep.GetLocalAddress()
	e.Addr = local.Addr
	var id objectIdentity = ep
	connected := st.sendQueue != nil && (st.recvQueue != nil || st.host)
	switch {
	case connectioned && connected:
		e.Flags |= imgfmt.UnixConnected
		if peer, err := ep.GetRemoteAddress(); err == nil {
			e.Peer = peer.Addr
		}
		if !st.host {
			id = unixConnID(st.recvQueue, st.sendQueue)
		}
	case connectioned && st.host:
		e.Flags |= imgfmt.UnixConnected
	case !connectioned:
		e.Flags |= imgfmt.UnixConnectionless
		if st.sendQueue != nil {
			e.Flags |= imgfmt.UnixConnected
			if peer, err := ep.GetRemoteAddress(); err == nil {
				e.Peer = peer.Addr
			}
		}
	}
	if st.host {
		e.Flags |= imgfmt.UnixHost
		st.queue = nil
	} else if e.Flags&(imgfmt.UnixConnected|imgfmt.UnixConnectionless) != 0 {
		e.Queue = st.queue
		for _, f := range []struct {
			on  bool
			bit uint32
		}{{st.recvClosed, imgfmt.UnixRecvClosed}, {st.sendClosed, imgfmt.UnixSendClosed},
			{st.sendShutdown, imgfmt.UnixSendShutdown}, {st.reset, imgfmt.UnixReset}} {
			if f.on {
				e.Flags |= f.bit
			}
		}
		if e.Flags&imgfmt.UnixConnected == 0 {
			// An unconnected datagram socket: only its receive side can be shut down (and
			// only while connected), nothing else applies.
			e.Flags &^= imgfmt.UnixSendClosed | imgfmt.UnixSendShutdown | imgfmt.UnixReset | imgfmt.UnixRecvClosed
		}
	}
	if st.listening {
		e.Flags |= imgfmt.UnixListening
		// gVisor's listen(2) keeps one more slot than its argument (as Linux admits one more).
		e.Backlog = uint32(max(st.backlog-1, 0))
		e.Pending = uint32(st.pending)
		if e.AcceptQueue, err = readAcceptQueue(ep, st.inFlight); err != nil { // obj_unix_accept.go
			return nil, nil, fmt.Errorf("unix socket: accept queue: %w", err)
		}
		if len(e.AcceptQueue) > 0 {
			e.Flags |= imgfmt.UnixAcceptQueue
			e.Pending = uint32(len(e.AcceptQueue))
		}
	}
	return id, &imgfmt.UnixSocketObject{Type: uint32(stype), Ends: []imgfmt.UnixSocketEnd{e}}, nil
}

// captureInFlight records an fd in flight that a thaw can reopen by path (a file, directory or
// device), or returns nil (the fd is dropped at thaw: pipes, sockets, anonymous files...).
func captureInFlight(t *kernel.Task, file *vfs.FileDescription) *imgfmt.UnixRightsFile {
	if !file.TryIncRef() {
		return nil
	}
	defer file.DecRef(t)
	f, err := captureFile(t, -1, file, kernel.FDFlags{})
	if err != nil || f.Handle == nil {
		return nil
	}
	switch f.Kind {
	case imgfmt.FileRegular, imgfmt.FileDirectory, imgfmt.FileCharDev, imgfmt.FileBlockDev:
		return &imgfmt.UnixRightsFile{Kind: f.Kind, StatusFlags: f.StatusFlags, Offset: f.Offset, Handle: f.Handle}
	}
	return nil
}

// thawUnixSocket rebuilds a unix-socket object: one file per end.
func thawUnixSocket(t *kernel.Task, p *imgfmt.Process, o *imgfmt.Object, b *imgfmt.UnixSocketObject) (*thawedObject, error) {
	stype := linux.SockType(b.Type)
	if err := checkUnixSockOpts(b); err != nil {
		return nil, err
	}
	th := &thawedObject{files: make([]*vfs.FileDescription, len(b.Ends))}
	var err error
	switch e0 := &b.Ends[0]; {
	case !unixInstalled(o):
		// Only fds 0-2, which stay the thawer's: plain sockets of the type stand in, without
		// binding names the thawer's own sockets may hold.
		err = thawUnixUnused(t, stype, th.files)
	case len(b.Ends) > 1 && b.AcceptListener() >= 0:
		th.commit, err = thawUnixAcceptQueue(t, p, stype, b, th.files) // obj_unix_accept.go
	case len(b.Ends) == 2:
		err = thawUnixPair(t, stype, b.Ends, th.files)
	case e0.Flags&imgfmt.UnixConnected != 0 && e0.Flags&imgfmt.UnixConnectionless == 0:
		err = thawUnixOrphan(t, stype, e0, th.files)
	default:
		th.commit, err = thawUnixSingle(t, p, stype, e0, th.files)
	}
	if err == nil {
		for d, f := range th.files {
			if err = f.SetStatusFlags(t, t.Credentials(), descStatusFlags(p, o, uint32(d))&linux.O_NONBLOCK); err != nil {
				break
			}
		}
	}
	if err != nil {
		th.release(t)
		return nil, err
	}
	return th, nil
}

// unixInstalled reports whether any fd of o is installed by the thaw (above 2).
func unixInstalled(o *imgfmt.Object) bool {
	for _, f := range o.FDs {
		if f.FD > 2 {
			return true
		}
	}
	return false
}

// thawUnixUnused makes unconnected sockets of type stype for an object whose fds a thaw does not
// install.
func thawUnixUnused(t *kernel.Task, stype linux.SockType, files []*vfs.FileDescription) error {
	for i := range files {
		f, serr := socket.New(t, linux.AF_UNIX, stype, 0)
		if serr != nil {
			return fmt.Errorf("socket: %w", sockErrno(serr))
		}
		files[i] = f
	}
	return nil
}

// sock returns the unix socket of a file made by socket.New or socket.Pair.
func sock(f *vfs.FileDescription) *unix.Socket {
	return f.Impl().(*unix.Socket)
}

// thawUnixPair rebuilds a connection with both ends in the image.
func thawUnixPair(t *kernel.Task, stype linux.SockType, ends []imgfmt.UnixSocketEnd, files []*vfs.FileDescription) error {
	f0, f1, serr := socket.Pair(t, linux.AF_UNIX, stype, 0)
	if serr != nil {
		return fmt.Errorf("socketpair: %w", sockErrno(serr))
	}
	files[0], files[1] = f0, f1
	s := [2]*unix.Socket{sock(f0), sock(f1)}
	for i := range 2 {
		if err := setUnixAddr(s[i], ends[i].Addr); err != nil {
			return err
		}
	}
	for i := range 2 {
		if err := refillFrom(t, s[1-i], ends[i].Queue); err != nil {
			return fmt.Errorf("end %d: %w", i, err)
		}
	}
	for i := range 2 {
		if err := applyUnixSockOpts(t, s[i], ends[i].Options); err != nil {
			return fmt.Errorf("end %d: %w", i, err)
		}
	}
	for i := range 2 {
		shutdownUnix(s[i], &ends[i])
	}
	return nil
}

// thawUnixOrphan rebuilds a connected socket whose peer is not in the image: a socket of the same
// type whose peer is gone.
func thawUnixOrphan(t *kernel.Task, stype linux.SockType, e *imgfmt.UnixSocketEnd, files []*vfs.FileDescription) error {
	f, gone, serr := socket.Pair(t, linux.AF_UNIX, stype, 0)
	if serr != nil {
		return fmt.Errorf("socketpair: %w", sockErrno(serr))
	}
	files[0] = f
	defer func() {
		if gone != nil {
			gone.DecRef(t)
		}
	}()
	s, peer := sock(f), sock(gone)
	if err := setUnixAddr(s, e.Addr); err != nil {
		return err
	}
	if err := setUnixAddr(peer, e.Peer); err != nil {
		return err
	}
	if err := refillFrom(t, peer, e.Queue); err != nil {
		return err
	}
	if e.Flags&imgfmt.UnixReset != 0 || e.Flags&imgfmt.UnixRecvClosed == 0 {
		// Leave a byte unread in the peer: closing it then marks our queue "closed with unread
		// data", which reads report as ECONNRESET once the queued data is drained.
		if err := sendUnix(t, s, []byte{0}, transport.ControlMessages{}); err != nil {
			return fmt.Errorf("marking the connection reset: %w", err)
		}
	}
	gone.DecRef(t)
	gone = nil
	if err := applyUnixSockOpts(t, s, e.Options); err != nil {
		return err
	}
	shutdownUnix(s, e)
	return nil
}

// thawUnixSingle rebuilds an unconnected, bound, listening or connectionless socket. The returned
// commit reconnects a datagram socket that was connected to an address.
func thawUnixSingle(t *kernel.Task, p *imgfmt.Process, stype linux.SockType, e *imgfmt.UnixSocketEnd, files []*vfs.FileDescription) (func(*kernel.Task) error, error) {
	f, serr := socket.New(t, linux.AF_UNIX, stype, 0)
	if serr != nil {
		return nil, fmt.Errorf("socket: %w", sockErrno(serr))
	}
	files[0] = f
	s := sock(f)
	if err := applyUnixSockOpts(t, s, e.Options); err != nil {
		return nil, err
	}
	if e.Addr != "" {
		if err := bindUnix(t, p, f, e.Addr); err != nil {
			return nil, fmt.Errorf("bind %q: %w", e.Addr, err)
		}
	}
	if e.Flags&imgfmt.UnixListening != 0 {
		if err := s.Listen(t, int(e.Backlog)+1); err != nil {
			return nil, fmt.Errorf("listen: %w", sockErrno(err))
		}
	}
	if len(e.Queue) > 0 {
		bep, ok := s.Endpoint().(transport.BoundEndpoint)
		if !ok {
			return nil, fmt.Errorf("datagram socket without a queue to refill: %w", errUnsupportedObject)
		}
		snd, serr := bep.UnidirectionalConnect(t)
		if serr != nil {
			return nil, fmt.Errorf("refilling the queue: %w", sockErrno(serr))
		}
		defer snd.Release(t)
		var total int64
		for _, m := range e.Queue {
			total += int64(len(m.Data))
		}
		// A connected sender's SO_SNDBUF may have raised this queue's limit before the freeze.
		if total > snd.SendMaxQueueSize() {
			snd.SetSendBufferSize(total)
		}
		for i, m := range e.Queue {
			ctl, err := unixControl(t, m)
			if err != nil {
				return nil, err
			}
			if n, _, serr := snd.Send(t, [][]byte{m.Data}, ctl, transport.Address{Addr: m.From}); serr != nil {
				if n == 0 {
					ctl.Release(t)
				}
				return nil, fmt.Errorf("refilling message %d of %d (%d bytes): %w", i+1, len(e.Queue), len(m.Data), sockErrno(serr))
			}
		}
	}
	if e.Flags&imgfmt.UnixConnected == 0 {
		return nil, nil
	}
	return func(t *kernel.Task) error {
		// The target may be another socket of this image, bound in the prepare phase; a
		// target that is gone leaves the socket unconnected (send then needs an address).
		if err := s.Connect(t, unixSockaddr(e.Peer), false); err != nil {
			log.Warningf("ckpt: thaw: reconnecting a datagram socket to %q: %v", e.Peer, sockErrno(err))
			return nil
		}
		shutdownUnix(s, e)
		return nil
	}, nil
}

// setUnixAddr gives a connected socket its local address (what getsockname and its peer's
// getpeername report) without binding a name: a connected socket needs none to work.
func setUnixAddr(s *unix.Socket, addr string) error {
	if addr == "" {
		return nil
	}
	if err := s.Endpoint().Bind(transport.Address{Addr: addr}); err != nil {
		return fmt.Errorf("setting address %q: %w", addr, sockErrno(err))
	}
	return nil
}

// unixControl returns the control messages a refilled message carries: credentials if the
// original did (the thawing process's: the sender's are not in the image), and the fds in flight
// that can be reopened (with the thawer's credentials, at their offsets; a file that is gone or
// changed kind fails the thaw with ESTALE). The caller owns the result (Release it if unsent).
func unixControl(t *kernel.Task, m imgfmt.UnixMessage) (transport.ControlMessages, error) {
	var c transport.ControlMessages
	if m.Creds {
		c.Credentials = control.MakeCreds(t)
	}
	if len(m.Files) == 0 {
		return c, nil
	}
	rights := make(control.RightsFiles, 0, len(m.Files))
	for _, rf := range m.Files {
		f, err := reopenVerified(t, rf.Handle, rf.StatusFlags, false /* content */)
		if err == nil && rf.Offset >= 0 && (rf.Kind == imgfmt.FileRegular || rf.Kind == imgfmt.FileBlockDev) {
			if _, err = f.Seek(t, rf.Offset, linux.SEEK_SET); err != nil {
				f.DecRef(t)
			}
		}
		if err != nil {
			rights.Release(t)
			return transport.ControlMessages{}, fmt.Errorf("fd in flight %s: %w", rf.Handle.Path, err)
		}
		rights = append(rights, f)
	}
	c.Rights = &rights
	return c, nil
}

// refillFrom sends msgs from s into its peer's receive queue, one send per message. The queue's
// limit (s's SO_SNDBUF) is raised for the refill if the messages need more; the recorded options
// applied afterwards set it back.
func refillFrom(t *kernel.Task, s *unix.Socket, msgs []imgfmt.UnixMessage) error {
	var total int64
	for _, m := range msgs {
		total += int64(len(m.Data))
	}
	if ops := s.Endpoint().SocketOptions(); total > ops.GetSendBufferSize() {
		ops.SetSendBufferSize(total, true /* notify */)
	}
	_, stype, _ := s.Type()
	for i, m := range msgs {
		if len(m.Data) == 0 && stype == linux.SOCK_STREAM && len(m.Files) == 0 {
			continue // A stream queue holds no empty messages that matter.
		}
		ctl, err := unixControl(t, m)
		if err != nil {
			return err
		}
		if err := sendUnix(t, s, m.Data, ctl); err != nil {
			return fmt.Errorf("refilling message %d of %d (%d bytes): %w", i+1, len(msgs), len(m.Data), err)
		}
	}
	return nil
}

// sendUnix sends one message from s to its peer without blocking; all of it must fit.
func sendUnix(t *kernel.Task, s *unix.Socket, data []byte, ctl transport.ControlMessages) error {
	n, notify, serr := s.Endpoint().SendMsg(t, [][]byte{data}, ctl, nil)
	if notify != nil {
		notify()
	}
	if serr != nil {
		if n == 0 {
			ctl.Release(t)
		}
		return sockErrno(serr)
	}
	if n != int64(len(data)) {
		return fmt.Errorf("sent %d of %d bytes", n, len(data))
	}
	return nil
}

// shutdownUnix applies the recorded shutdown state of e to s.
func shutdownUnix(s *unix.Socket, e *imgfmt.UnixSocketEnd) {
	ep := s.Endpoint()
	if e.Flags&imgfmt.UnixRecvClosed != 0 {
		ep.Shutdown(tcpip.ShutdownRead)
	}
	if e.Flags&imgfmt.UnixSendShutdown != 0 {
		ep.Shutdown(tcpip.ShutdownWrite)
	}
}
