package ckpt

import (
	"bytes"
	"fmt"
	"math/bits"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/log"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/socket"
	"gvisor.dev/gvisor/pkg/sentry/socket/hostinet"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// AF_INET/AF_INET6 sockets of gVisor's netstack (docs/sockets.md, "inet sockets"). The socket
// (netstack's unexported sock) is reached through socket.Socket, the interface the syscalls use:
// Type, State, GetSockName, GetPeerName, GetSockOpt. Its netstack endpoint is the sock's exported
// field Endpoint, read through reflection after checking StateFields still lists it (stateField).
// What no getter gives: a TCP listener's backlog (tcp.Endpoint acceptQueue.capacity) and a TCP
// end's unacknowledged send bytes (sndQueueInfo.TCPSndBufState.SndBufUsed) through the stateify
// route (stateNestedInt); a UDP socket's queued datagrams are read (consumed) and put back at once
// through the endpoint's exported HandlePacket (obj_inet_udp.go). TCP's unread bytes are peeked.

// inetSocket is a netstack inet socket of type SOCK_STREAM (TCP) or SOCK_DGRAM (UDP).
type inetSocket struct {
	sock     socket.Socket
	ep       tcpip.Endpoint
	family   int
	stype    linux.SockType
	protocol int
}

func (s inetSocket) tcp() bool { return s.stype == linux.SOCK_STREAM }

// asInetSocket returns the netstack inet socket impl is, or ok false for other families, raw and
// ICMP sockets, and host sockets (--network=host), which keep the placeholder of older images.
func asInetSocket(impl socket.Socket) (s inetSocket, ok bool, err error) {
	family, stype, protocol := impl.Type()
	if family != linux.AF_INET && family != linux.AF_INET6 {
		return s, false, nil
	}
	switch {
	case stype == linux.SOCK_STREAM && (protocol == 0 || protocol == linux.IPPROTO_TCP):
	case stype == linux.SOCK_DGRAM && (protocol == 0 || protocol == linux.IPPROTO_UDP):
	default: // Raw sockets, ICMP (ping) sockets.
		return s, false, nil
	}
	if _, host := impl.(*hostinet.Socket); host {
		return s, false, nil
	}
	ep, err := inetEndpoint(impl)
	if err != nil {
		return s, false, err
	}
	return inetSocket{sock: impl, ep: ep, family: family, stype: stype, protocol: protocol}, true, nil
}

// inetEndpoint returns the tcpip.Endpoint of a netstack socket: its exported field Endpoint.
func inetEndpoint(impl socket.Socket) (tcpip.Endpoint, error) {
	obj, ok := impl.(stateifyObject)
	if !ok {
		return nil, fmt.Errorf("socket %T is not savable (gVisor changed)", impl)
	}
	f, err := stateField(obj, "Endpoint")
	if err != nil {
		return nil, err
	}
	if !f.CanInterface() {
		return nil, fmt.Errorf("%s.Endpoint is not exported (gVisor changed)", obj.StateTypeName())
	}
	ep, ok := f.Interface().(tcpip.Endpoint)
	if !ok || ep == nil {
		return nil, fmt.Errorf("%s.Endpoint is not a tcpip.Endpoint (gVisor changed)", obj.StateTypeName())
	}
	return ep, nil
}

// captureInetSocket records an inet socket. It returns ok false for sockets it does not handle.
// A TCP connection whose peer is also an fd of the process becomes one object with both ends,
// identified by the end whose local address sorts first (so both ends find the same object).
func captureInetSocket(t *kernel.Task, file *vfs.FileDescription, impl socket.Socket) (objectIdentity, imgfmt.ObjectBody, bool, error) {
	s, ok, err := asInetSocket(impl)
	if !ok || err != nil {
		return nil, nil, ok, err
	}
	end, err := captureInetEnd(t, s)
	if err != nil {
		return nil, nil, true, err
	}
	body := &imgfmt.InetSocketObject{Ends: []imgfmt.InetEnd{end}}
	if !s.tcp() {
		if end.State != imgfmt.InetUnbound {
			if body.Ends[0].Datagrams, err = captureDatagrams(s); err != nil {
				return nil, nil, true, err
			}
		}
		return impl, body, true, nil
	}
	if end.State != imgfmt.InetConnected {
		return impl, body, true, nil
	}
	peer, peerFile := findTCPPeer(t, file, s)
	if peer.sock == nil {
		// The peer is not in the image: reset on thaw, after the unread bytes. ShutWrite stays:
		// a tree restore that finds the peer in another process's image rebuilds the connection
		// half-closed (thaw_tree_tcp.go); a thaw of this image alone ignores it.
		body.Ends[0].State = imgfmt.InetReset
		if body.Ends[0].Data, err = peekTCP(s.ep); err != nil {
			return nil, nil, true, err
		}
		return impl, body, true, nil
	}
	peerEnd, err := captureInetEnd(t, peer)
	if err != nil {
		return nil, nil, true, err
	}
	settleTCPPair(s, peer)
	if end.Data, err = peekTCP(s.ep); err == nil {
		peerEnd.Data, err = peekTCP(peer.ep)
	}
	if err != nil {
		return nil, nil, true, err
	}
	body.Ends = []imgfmt.InetEnd{end, peerEnd}
	id := objectIdentity(impl)
	if addrLess(peerEnd.Local, end.Local) {
		id = peerFile.Impl()
	}
	return id, body, true, nil
}

// captureInetEnd records what one socket is: family, type, state, addresses and options.
func captureInetEnd(t *kernel.Task, s inetSocket) (imgfmt.InetEnd, error) {
	e := imgfmt.InetEnd{Family: uint16(s.family), Type: uint16(s.stype), Protocol: uint16(s.protocol)}
	sa, _, serr := s.sock.GetSockName(t)
	if serr != nil {
		return e, fmt.Errorf("getsockname: %w", sockErrno(serr))
	}
	e.Local = inetAddrOf(sa)
	if len(e.Local.Addr) == 0 {
		return e, fmt.Errorf("getsockname returned a %T", sa)
	}
	if pa, _, perr := s.sock.GetPeerName(t); perr == nil {
		e.Remote = inetAddrOf(pa)
	}
	opts := sockOptionsCommon
	if s.family == linux.AF_INET {
		opts = append(opts[:len(opts):len(opts)], sockOptionsIP...)
	} else {
		opts = append(opts[:len(opts):len(opts)], sockOptionsIPv6...)
	}
	if s.tcp() {
		opts = append(opts, sockOptionsTCP...)
	}
	e.Options = captureSockOptions(t, s.sock, opts)
	connected := len(e.Remote.Addr) > 0
	switch {
	case !s.tcp() && e.Local.Port == 0:
		e.State = imgfmt.InetUnbound
	case !s.tcp() && connected:
		e.State = imgfmt.InetConnected
	case !s.tcp():
		e.State = imgfmt.InetBound
	case s.sock.State() == linux.TCP_LISTEN:
		e.State = imgfmt.InetListening
		tep, ok := s.ep.(*tcp.Endpoint)
		if !ok {
			return e, fmt.Errorf("TCP endpoint is a %T (gVisor changed)", s.ep)
		}
		backlog, err := stateNestedInt(tep, "acceptQueue", "capacity")
		if err != nil {
			return e, err
		}
		e.Backlog = uint32(min(max(backlog, 0), 1<<20))
		q, err := captureTCPAcceptQueue(t, s)
		if err != nil {
			return e, err
		}
		e.HasAcceptQueue, e.AcceptQueue = len(q) > 0, q
	case tcpConnected(s.sock.State()) && connected:
		e.State = imgfmt.InetConnected
		e.ShutWrite = s.sock.State() == linux.TCP_FIN_WAIT1 || s.sock.State() == linux.TCP_FIN_WAIT2
	case s.sock.State() == linux.TCP_CLOSE && e.Local.Port == 0 && !connected:
		e.State = imgfmt.InetUnbound
	case s.sock.State() == linux.TCP_CLOSE && !connected && isTCPBound(s.ep):
		e.State = imgfmt.InetBound
	default:
		// Connecting, closing, reset, or a half-closed connection: a socket that reports the
		// connection as reset.
		e.State = imgfmt.InetReset
	}
	return e, nil
}

// isTCPBound reports whether a closed TCP endpoint is merely bound (not closed after a connection).
func isTCPBound(ep tcpip.Endpoint) bool {
	tep, ok := ep.(*tcp.Endpoint)
	return ok && tep.EndpointState() == tcp.StateBound
}

// findTCPPeer returns the other end of s's connection if it is an fd of t's process.
func findTCPPeer(t *kernel.Task, self *vfs.FileDescription, s inetSocket) (inetSocket, *vfs.FileDescription) {
	local, lerr := s.ep.GetLocalAddress()
	remote, rerr := s.ep.GetRemoteAddress()
	var (
		peer     inetSocket
		peerFile *vfs.FileDescription
	)
	if lerr != nil || rerr != nil {
		return peer, nil
	}
	t.FDTable().ForEach(t, func(_ int32, file *vfs.FileDescription, _ kernel.FDFlags) bool {
		impl, ok := file.Impl().(socket.Socket)
		if !ok || file == self {
			return true
		}
		o, ok, err := asInetSocket(impl)
		if !ok || err != nil || !o.tcp() || !tcpConnected(impl.State()) {
			return true
		}
		ol, lerr := o.ep.GetLocalAddress()
		or, rerr := o.ep.GetRemoteAddress()
		if lerr == nil && rerr == nil && sameAddr(ol, remote) && sameAddr(or, local) {
			peer, peerFile = o, file
			return false
		}
		return true
	})
	return peer, peerFile
}

// tcpConnected reports whether a TCP end in Linux state st is rebuilt as one end of a pair when its
// peer is in the image: established, or half-closed in one direction (a FIN sent or received).
func tcpConnected(st uint32) bool {
	switch st {
	case linux.TCP_ESTABLISHED, linux.TCP_CLOSE_WAIT, linux.TCP_FIN_WAIT1, linux.TCP_FIN_WAIT2:
		return true
	}
	return false
}

func sameAddr(a, b tcpip.FullAddress) bool {
	return a.Port == b.Port && a.Addr == b.Addr
}

// addrLess orders addresses (bytes, then port) to pick a pair's identity.
func addrLess(a, b imgfmt.InetAddr) bool {
	if c := bytes.Compare(a.Addr, b.Addr); c != 0 {
		return c < 0
	}
	return a.Port < b.Port
}

// tcpSendUsed returns the bytes s has sent (or queued) that its peer has not acknowledged yet.
func tcpSendUsed(s inetSocket) int64 {
	tep, ok := s.ep.(*tcp.Endpoint)
	if !ok {
		return 0
	}
	n, err := stateNestedInt(tep, "sndQueueInfo", "TCPSndBufState", "SndBufUsed")
	if err != nil {
		log.Warningf("ckpt: %v", err)
		return 0
	}
	return n
}

// settleTCPPair waits (at most a second) until the bytes each end of a loopback connection has
// sent are in the other end's receive queue: netstack delivers loopback segments on its own
// goroutines, so a write just before the freeze may still be on its way. It stops early when
// nothing moves for 20 ms (the receiver's window is full: those bytes stay in the sender's queue,
// which the image cannot hold; logged).
func settleTCPPair(a, b inetSocket) {
	type snap struct{ sa, sb, ra, rb int64 }
	read := func() snap {
		ra, _ := a.ep.GetSockOptInt(tcpip.ReceiveQueueSizeOption)
		rb, _ := b.ep.GetSockOptInt(tcpip.ReceiveQueueSizeOption)
		return snap{tcpSendUsed(a), tcpSendUsed(b), int64(ra), int64(rb)}
	}
	last, still := read(), 0
	for deadline := time.Now().Add(time.Second); last.sa+last.sb > 0 && still < 20 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
		cur := read()
		if cur == last {
			still++
		} else {
			still = 0
		}
		last = cur
	}
	if last.sa+last.sb > 0 {
		log.Warningf("ckpt: loopback TCP pair: %d and %d bytes not yet acknowledged by the peer are not in the image", last.sa, last.sb)
	}
}

// peekTCP returns the unread bytes of a TCP end without consuming them. Only more bytes than an
// image holds is an error.
func peekTCP(ep tcpip.Endpoint) ([]byte, error) {
	var buf bytes.Buffer
	_, err := ep.Read(&buf, tcpip.ReadOptions{Peek: true})
	switch err.(type) {
	case nil, *tcpip.ErrWouldBlock, *tcpip.ErrClosedForReceive:
	default:
		// The connection changed state under the freeze (a reset arrived): nothing to read.
		log.Debugf("ckpt: peeking at a TCP receive queue: %s", err)
		return nil, nil
	}
	if buf.Len() > imgfmt.MaxObjectData {
		return nil, fmt.Errorf("%d unread bytes exceed %d: %w", buf.Len(), imgfmt.MaxObjectData, errUnsupportedObject)
	}
	if buf.Len() == 0 {
		return nil, nil
	}
	return buf.Bytes(), nil
}

// ntohs swaps a port between network and host order (x86 is little-endian).
func ntohs(p uint16) uint16 { return bits.ReverseBytes16(p) }

// inetAddrOf converts a sockaddr as getsockname returns it.
func inetAddrOf(sa linux.SockAddr) imgfmt.InetAddr {
	switch a := sa.(type) {
	case *linux.SockAddrInet:
		return imgfmt.InetAddr{Port: ntohs(a.Port), Addr: append([]byte{}, a.Addr[:]...)}
	case *linux.SockAddrInet6:
		return imgfmt.InetAddr{Port: ntohs(a.Port), Addr: append([]byte{}, a.Addr[:]...), Scope: a.Scope_id}
	}
	return imgfmt.InetAddr{}
}

// inetAddrFromTCPIP converts a netstack address to the form a socket of family shows it in (an
// AF_INET6 socket shows IPv4 addresses v4-mapped).
func inetAddrFromTCPIP(a tcpip.FullAddress, family int) imgfmt.InetAddr {
	b := a.Addr.AsSlice()
	if family == linux.AF_INET6 && len(b) == 4 {
		m := make([]byte, 16)
		m[10], m[11] = 0xff, 0xff
		copy(m[12:], b)
		b = m
	}
	return imgfmt.InetAddr{Port: a.Port, Addr: append([]byte{}, b...)}
}

// tcpipAddr converts an image address to netstack's form (v4-mapped addresses become IPv4).
func tcpipAddr(a imgfmt.InetAddr) tcpip.FullAddress {
	b := a.Addr
	if len(b) == 16 && bytes.Equal(b[:12], []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}) {
		b = b[12:]
	}
	return tcpip.FullAddress{Addr: tcpip.AddrFromSlice(b), Port: a.Port}
}
