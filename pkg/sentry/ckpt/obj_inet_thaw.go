package ckpt

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/log"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/socket"
	"gvisor.dev/gvisor/pkg/sentry/socket/netstack"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/waiter"
)

// Thaw of inet sockets. Every socket is made with socket.New (what socket(2) calls), its options
// set, then bound / listening / connected through socket.Socket. netstack has no TCP repair mode,
// so a loopback connection with both ends in the image is rebuilt as a fresh connection through a
// temporary listener on the loopback (new ephemeral ports), and each end's unread bytes are
// written again by the other end. A connection to a peer outside the image is rebuilt the same way
// and then reset by the temporary peer (SO_LINGER 0 + close), so the program sees ECONNRESET and
// then EPIPE, never ENOTSOCK.

// inetSettleTimeout bounds each wait of the thaw for netstack's own goroutines (a handshake, a
// refill reaching the peer, a reset arriving) on the loopback.
const inetSettleTimeout = 5 * time.Second

// thawInetSocket rebuilds an inet socket object: one description per end.
func thawInetSocket(t *kernel.Task, p *imgfmt.Process, o *imgfmt.Object, b *imgfmt.InetSocketObject) (*thawedObject, error) {
	for i := range b.Ends {
		if err := knownSockOptions(b.Ends[i].Options, sockOptionsCommon, sockOptionsTCP, sockOptionsIP, sockOptionsIPv6); err != nil {
			return nil, err
		}
	}
	th := &thawedObject{}
	var err error
	if b.AcceptListener() >= 0 && len(b.Ends) > 1 {
		th.files, err = thawTCPAcceptQueue(t, b) // obj_inet_accept.go
	} else if len(b.Ends) == 2 {
		th.files, err = thawTCPPair(t, &b.Ends[0], &b.Ends[1])
	} else {
		var f *vfs.FileDescription
		if f, err = thawInetEnd(t, &b.Ends[0]); err == nil {
			th.files = []*vfs.FileDescription{f}
		}
	}
	if err != nil {
		th.release(t)
		return nil, err
	}
	for desc, f := range th.files {
		if status := descStatusFlags(p, o, uint32(desc)); status&linux.O_NONBLOCK != 0 {
			if err := f.SetStatusFlags(t, t.Credentials(), linux.O_NONBLOCK); err != nil {
				th.release(t)
				return nil, fmt.Errorf("setting O_NONBLOCK: %w", err)
			}
		}
	}
	return th, nil
}

// newInetSocket makes a socket of e's family, type and protocol.
func newInetSocket(t *kernel.Task, e *imgfmt.InetEnd) (*vfs.FileDescription, inetSocket, error) {
	f, serr := socket.New(t, int(e.Family), linux.SockType(e.Type), int(e.Protocol))
	if serr != nil {
		return nil, inetSocket{}, fmt.Errorf("socket(%d, %d, %d): %w", e.Family, e.Type, e.Protocol, sockErrno(serr))
	}
	s, ok, err := asInetSocket(f.Impl().(socket.Socket))
	if err == nil && !ok {
		err = fmt.Errorf("socket(%d, %d, %d) is not a netstack socket (host network?): %w", e.Family, e.Type, e.Protocol, errUnsupportedObject)
	}
	if err != nil {
		f.DecRef(t)
		return nil, inetSocket{}, err
	}
	return f, s, nil
}

// thawInetEnd rebuilds a socket that is not part of a pair.
func thawInetEnd(t *kernel.Task, e *imgfmt.InetEnd) (*vfs.FileDescription, error) {
	if e.State == imgfmt.InetReset {
		return thawTCPReset(t, e)
	}
	f, s, err := newInetSocket(t, e)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*vfs.FileDescription, error) {
		f.DecRef(t)
		return nil, err
	}
	if err := restoreSockOptions(t, s.sock, e.Options); err != nil {
		return fail(err)
	}
	if e.State == imgfmt.InetUnbound {
		return f, nil
	}
	if serr := s.sock.Bind(t, sockaddrBytes(int(e.Family), e.Local)); serr != nil {
		return fail(fmt.Errorf("bind to %s: %w", e.Local, sockErrno(serr)))
	}
	switch e.State {
	case imgfmt.InetListening:
		if serr := s.sock.Listen(t, int(e.Backlog)); serr != nil {
			return fail(fmt.Errorf("listen on %s: %w", e.Local, sockErrno(serr)))
		}
	case imgfmt.InetConnected: // UDP only: pairs and resets are TCP.
		if serr := s.sock.Connect(t, sockaddrBytes(int(e.Family), e.Remote), false); serr != nil {
			return fail(fmt.Errorf("connect to %s: %w", e.Remote, sockErrno(serr)))
		}
	}
	if err := refillDatagrams(s.ep, e.Datagrams); err != nil {
		return fail(err)
	}
	return f, nil
}

// sockaddrBytes builds the sockaddr_in / sockaddr_in6 of a for bind(2) and connect(2).
func sockaddrBytes(family int, a imgfmt.InetAddr) []byte {
	if family == linux.AF_INET {
		b := make([]byte, 16)
		binary.LittleEndian.PutUint16(b, linux.AF_INET)
		binary.BigEndian.PutUint16(b[2:], a.Port)
		copy(b[4:8], a.Addr)
		return b
	}
	b := make([]byte, 28)
	binary.LittleEndian.PutUint16(b, linux.AF_INET6)
	binary.BigEndian.PutUint16(b[2:], a.Port)
	copy(b[8:24], a.Addr)
	binary.LittleEndian.PutUint32(b[24:], a.Scope)
	return b
}

// loopbackConn makes a fresh TCP connection on the loopback: a socket of client's family connected
// to one of server's family, through a temporary listener that is closed before returning. The
// client socket is returned as a file; the server end as a bare endpoint with its wait queue.
func loopbackConn(t *kernel.Task, client, server *imgfmt.InetEnd) (cf *vfs.FileDescription, c inetSocket, sep tcpip.Endpoint, swq *waiter.Queue, err error) {
	lf, l, err := newInetSocket(t, &imgfmt.InetEnd{Family: server.Family, Type: uint16(linux.SOCK_STREAM), Protocol: server.Protocol})
	if err != nil {
		return nil, c, nil, nil, fmt.Errorf("temporary listener: %w", err)
	}
	defer lf.DecRef(t)
	// An AF_INET6 server talking to an AF_INET client listens on the wildcard (dual stack); an
	// AF_INET6 client reaches an AF_INET server at ::ffff:127.0.0.1.
	laddr, target := familyLoopback(int(server.Family)), familyLoopback(int(client.Family))
	if server.Family == linux.AF_INET6 && client.Family == linux.AF_INET {
		laddr = imgfmt.InetAddr{Addr: make([]byte, 16)}
	}
	if server.Family == linux.AF_INET && client.Family == linux.AF_INET6 {
		target = imgfmt.InetAddr{Addr: []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1}}
	}
	if serr := l.sock.Bind(t, sockaddrBytes(int(server.Family), laddr)); serr != nil {
		return nil, c, nil, nil, fmt.Errorf("temporary listener: bind: %w", sockErrno(serr))
	}
	if serr := l.sock.Listen(t, 1); serr != nil {
		return nil, c, nil, nil, fmt.Errorf("temporary listener: listen: %w", sockErrno(serr))
	}
	la, err2 := l.ep.GetLocalAddress()
	if err2 != nil {
		return nil, c, nil, nil, fmt.Errorf("temporary listener: %s", err2)
	}
	target.Port = la.Port
	cf, c, err = newInetSocket(t, client)
	if err != nil {
		return nil, c, nil, nil, err
	}
	// Buffer sizes before the handshake (they set the window scale), everything else later.
	if err := restoreSockOptions(t, c.sock, bufferOptions(client.Options)); err != nil {
		cf.DecRef(t)
		return nil, c, nil, nil, err
	}
	if err := connectUninterrupted(t, c.sock, sockaddrBytes(int(client.Family), target)); err != nil {
		cf.DecRef(t)
		return nil, c, nil, nil, fmt.Errorf("connecting to the temporary listener %s: %w", target, err)
	}
	e, ch := waiter.NewChannelEntry(waiter.ReadableEvents)
	if err := lf.EventRegister(&e); err != nil {
		cf.DecRef(t)
		return nil, c, nil, nil, err
	}
	defer lf.EventUnregister(&e)
	deadline := time.After(inetSettleTimeout)
	for {
		ep, wq, aerr := l.ep.Accept(nil)
		if aerr == nil {
			return cf, c, ep, wq, nil
		}
		if _, again := aerr.(*tcpip.ErrWouldBlock); !again {
			cf.DecRef(t)
			return nil, c, nil, nil, fmt.Errorf("accepting on the temporary listener: %s", aerr)
		}
		select {
		case <-ch:
		case <-deadline:
			cf.DecRef(t)
			return nil, c, nil, nil, fmt.Errorf("the temporary loopback connection was not accepted within %v", inetSettleTimeout)
		}
	}
}

// bufferOptions returns the SO_RCVBUF/SO_SNDBUF options of opts.
func bufferOptions(opts []imgfmt.SockOption) []imgfmt.SockOption {
	var out []imgfmt.SockOption
	for _, o := range opts {
		if o.Level == linux.SOL_SOCKET && (o.Name == linux.SO_RCVBUF || o.Name == linux.SO_SNDBUF) {
			out = append(out, o)
		}
	}
	return out
}

// thawTCPPair rebuilds a loopback connection with both ends in the image: end a connects, end b
// is accepted; then each end's unread bytes are written by the other, and the options are set.
func thawTCPPair(t *kernel.Task, a, b *imgfmt.InetEnd) ([]*vfs.FileDescription, error) {
	af, as, sep, swq, err := loopbackConn(t, a, b)
	if err != nil {
		return nil, err
	}
	bf, serr := netstack.New(t, int(b.Family), linux.SOCK_STREAM, int(b.Protocol), swq, sep)
	if serr != nil {
		sep.Close()
		af.DecRef(t)
		return nil, fmt.Errorf("wrapping the accepted end: %w", sockErrno(serr))
	}
	t.Kernel().RecordSocket(bf)
	files := []*vfs.FileDescription{af, bf}
	fail := func(err error) ([]*vfs.FileDescription, error) {
		af.DecRef(t)
		bf.DecRef(t)
		return nil, err
	}
	bs, _, err := asInetSocket(bf.Impl().(socket.Socket))
	if err != nil {
		return fail(err)
	}
	if err := restoreSockOptions(t, bs.sock, bufferOptions(b.Options)); err != nil {
		return fail(err)
	}
	if err := refillStream(bs.ep, as.ep, a.Data); err != nil {
		return fail(fmt.Errorf("refilling end 0: %w", err))
	}
	if err := refillStream(as.ep, bs.ep, b.Data); err != nil {
		return fail(fmt.Errorf("refilling end 1: %w", err))
	}
	if err := restoreSockOptions(t, as.sock, a.Options); err != nil {
		return fail(err)
	}
	if err := restoreSockOptions(t, bs.sock, b.Options); err != nil {
		return fail(err)
	}
	for _, c := range []struct {
		end        *imgfmt.InetEnd
		self, peer inetSocket
	}{{a, as, bs}, {b, bs, as}} {
		if c.end.ShutWrite {
			if err := shutWrite(t, c.self, c.peer); err != nil {
				return fail(err)
			}
		}
	}
	return files, nil
}

// shutWrite shuts self down for writing and waits until the peer has seen the FIN (so a read of
// the peer returns EOF after its unread bytes, as before the freeze, rather than EAGAIN).
func shutWrite(t *kernel.Task, self, peer inetSocket) error {
	if serr := self.sock.Shutdown(t, linux.SHUT_WR); serr != nil {
		return fmt.Errorf("shutdown(SHUT_WR): %w", sockErrno(serr))
	}
	for deadline := time.Now().Add(inetSettleTimeout); peer.sock.State() == linux.TCP_ESTABLISHED; {
		if time.Now().After(deadline) {
			return fmt.Errorf("the FIN did not arrive within %v", inetSettleTimeout)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// refillStream writes data from `from` and waits until all of it is in to's receive queue.
func refillStream(from, to tcpip.Endpoint, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	r := bytes.NewReader(data)
	deadline := time.Now().Add(inetSettleTimeout)
	for {
		if r.Len() > 0 {
			if _, err := from.Write(r, tcpip.WriteOptions{}); err != nil {
				if _, again := err.(*tcpip.ErrWouldBlock); !again {
					return fmt.Errorf("write: %s", err)
				}
			}
		}
		n, err := to.GetSockOptInt(tcpip.ReceiveQueueSizeOption)
		if err != nil {
			return fmt.Errorf("receive queue size: %s", err)
		}
		if r.Len() == 0 && n >= len(data) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d bytes arrived within %v", n, len(data), inetSettleTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// thawTCPReset makes a TCP socket whose connection has been reset: connected to a temporary peer
// on the loopback that writes the recorded unread bytes and then closes with SO_LINGER 0 (an RST).
// Reads return those bytes, then ECONNRESET; writes fail with EPIPE.
func thawTCPReset(t *kernel.Task, e *imgfmt.InetEnd) (*vfs.FileDescription, error) {
	f, s, sep, _, err := loopbackConn(t, e, e)
	if err != nil {
		return nil, err
	}
	if err := refillStream(sep, s.ep, e.Data); err != nil {
		sep.Close()
		f.DecRef(t)
		return nil, fmt.Errorf("refilling a reset socket: %w", err)
	}
	sep.SocketOptions().SetLinger(tcpip.LingerOption{Enabled: true})
	sep.Close()
	for deadline := time.Now().Add(inetSettleTimeout); s.sock.State() == linux.TCP_ESTABLISHED; {
		if time.Now().After(deadline) {
			f.DecRef(t)
			return nil, fmt.Errorf("the reset did not arrive within %v", inetSettleTimeout)
		}
		time.Sleep(time.Millisecond)
	}
	// Best effort: a reset connection is closed, and some options no longer apply to it.
	if err := restoreSockOptions(t, s.sock, e.Options); err != nil {
		log.Debugf("ckpt: options of a reset TCP socket: %v", err)
	}
	return f, nil
}

// connectUninterrupted connects sock to addr, blocking, without failing when a signal interrupts
// the wait: the thawer may be a Go program, whose runtime preempts its threads with SIGURG (CI saw
// a thaw fail with EINTR). An interrupted or still pending connect is tried again until
// inetSettleTimeout; a connect that completed meanwhile reports EISCONN, which is success here.
func connectUninterrupted(t *kernel.Task, sock socket.Socket, addr []byte) error {
	deadline := time.Now().Add(inetSettleTimeout)
	for {
		serr := sock.Connect(t, addr, true)
		if serr == nil {
			return nil
		}
		switch unix.Errno(serr.ToLinux()) {
		case unix.EISCONN:
			return nil
		case unix.EINTR, unix.EALREADY:
			if time.Now().After(deadline) {
				return fmt.Errorf("not connected within %v: %w", inetSettleTimeout, sockErrno(serr))
			}
			if !sleepUnlessKilled(t, time.Millisecond) {
				return sockErrno(serr)
			}
		default:
			return sockErrno(serr)
		}
	}
}
