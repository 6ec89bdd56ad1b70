package imgfmt

import (
	"fmt"
	"net/netip"
	"strings"
)

// InetSocketObject is an AF_INET/AF_INET6 socket (ObjInetSocket). It has one end, or two for a TCP
// connection whose both ends are in the image, or (format 1.6) a listener and the clients of its
// accept queue that the image has (end i is the object's description i). Body layout: u32 number
// of ends (1 or 2; up to maxInetEnds with an accept queue), u32 reserved, then each end (see
// InetEnd and obj_inet_accept.go).
type InetSocketObject struct {
	Ends []InetEnd
}

// InetState is what a thaw rebuilds an inet socket as.
type InetState uint8

// Inet socket states.
const (
	InetUnbound    InetState = 0 // Neither bound nor connected.
	InetBound      InetState = 1 // Bound to Local.
	InetListening  InetState = 2 // TCP, listening on Local with Backlog.
	InetConnected  InetState = 3 // UDP connected to Remote, or one end of a TCP pair in the image.
	InetReset      InetState = 4 // TCP connection whose peer is not in the image: reset on thaw.
	inetStateLimit InetState = 5
)

var inetStateNames = [...]string{"unbound", "bound", "listening", "connected", "reset"}

// Linux constants the body uses (SOCK_STREAM and SOCK_DGRAM: sockStream, sockDgram in obj_unix.go).
const (
	afInet     = 2
	afInet6    = 10
	ipprotoTCP = 6
	ipprotoUDP = 17
	maxBacklog = 1 << 20
	// inetShutWrite is InetEnd.ShutWrite in the flags byte.
	inetShutWrite = 1 << 0
	inetAddrLen   = 24
	// maxInetEnds bounds a listener object's ends (the listener and its queued clients).
	maxInetEnds = 4096
	// inetEndMinSize is the smallest encoded end, for bounding the end count by the bytes left.
	inetEndMinSize = 12 + 2*inetAddrLen + 12
)

// InetEnd is one socket. Layout: u16 family (2, 10), u16 type (1 stream, 2 datagram), u16 protocol
// (0 or 6 for stream, 0 or 17 for datagram), u8 state, u8 flags (bit 0: ShutWrite, on a connected or reset TCP end), u32 backlog (the accept queue's
// capacity; listening only), local InetAddr, remote InetAddr, the options (SockOption list), u32
// length + the unread bytes of its receive queue (TCP, connected or reset), u32 datagram count + each datagram (UDP:
// source InetAddr, u32 length, bytes).
type InetEnd struct {
	Family, Type, Protocol uint16
	State                  InetState
	// ShutWrite says that this end of a connected TCP pair has shut down writing (shutdown
	// SHUT_WR or a close in progress: its FIN was sent): the peer reads the unread bytes, then EOF.
	// On a reset end (the peer in another process's image) it says the same for a tree restore,
	// which joins the two ends into one connection again; a thaw of the image alone resets the
	// end anyway. Images written before reset ends carried it have it clear on every reset end.
	ShutWrite     bool
	Backlog       uint32
	Local, Remote InetAddr
	Options       []SockOption
	Data          []byte
	Datagrams     []Datagram
	// HasAcceptQueue (flags bit 1, format 1.6) says that AcceptQueue follows: a listening TCP
	// end's connections not yet accepted at freeze (obj_inet_accept.go).
	HasAcceptQueue bool
	AcceptQueue    []InetPendingConn
	// QueuedClient (flags bit 2, format 1.6) marks a client of the accept queue of the object's
	// listening end; Pending is its index in that accept queue.
	QueuedClient bool
	Pending      uint32
}

// InetAddr is a socket address as getsockname(2) shows it (an AF_INET6 socket shows IPv4 peers as
// v4-mapped addresses). Layout (24 bytes): u16 port (host order), u8 address length (0 for none, 4
// or 16), u8 reserved, u32 scope id (IPv6), 16 bytes address (zero-padded).
type InetAddr struct {
	Port  uint16
	Addr  []byte
	Scope uint32
}

// Datagram is one queued UDP datagram and where it came from.
type Datagram struct {
	From InetAddr
	Data []byte
}

// Kind implements ObjectBody.
func (*InetSocketObject) Kind() ObjectKind { return ObjInetSocket }

func (s *InetSocketObject) encode(w *wbuf) {
	w.u32(uint32(len(s.Ends)))
	w.u32(0)
	for i := range s.Ends {
		e := &s.Ends[i]
		w.u16(e.Family)
		w.u16(e.Type)
		w.u16(e.Protocol)
		w.u8(uint8(e.State))
		var flags uint8
		if e.ShutWrite {
			flags |= inetShutWrite
		}
		if e.HasAcceptQueue {
			flags |= inetAcceptQueue
		}
		if e.QueuedClient {
			flags |= inetQueuedClient
		}
		w.u8(flags)
		w.u32(e.Backlog)
		encodeInetAddr(w, e.Local)
		encodeInetAddr(w, e.Remote)
		encodeSockOptions(w, e.Options)
		w.u32(uint32(len(e.Data)))
		w.bytes(e.Data)
		w.u32(uint32(len(e.Datagrams)))
		for _, d := range e.Datagrams {
			encodeInetAddr(w, d.From)
			w.u32(uint32(len(d.Data)))
			w.bytes(d.Data)
		}
		encodeInetAcceptQueue(w, e)
	}
}

func encodeInetAddr(w *wbuf, a InetAddr) {
	w.u16(a.Port)
	w.u8(uint8(len(a.Addr)))
	w.u8(0)
	w.u32(a.Scope)
	var b [16]byte
	copy(b[:], a.Addr)
	w.bytes(b[:])
}

func decodeInetAddr(r *rbuf) InetAddr {
	a := InetAddr{Port: r.u16()}
	n := r.u8()
	r.zero(1, "inet address reserved")
	a.Scope = r.u32()
	b := r.take(16)
	if r.err != nil {
		return InetAddr{}
	}
	if n != 0 && n != 4 && n != 16 {
		r.fail("inet address length %d", n)
		return InetAddr{}
	}
	for _, c := range b[n:] {
		if c != 0 {
			r.fail("inet address padding is not zero")
			return InetAddr{}
		}
	}
	if n > 0 {
		a.Addr = append([]byte{}, b[:n]...)
	}
	return a
}

// bytesField reads a u32 length and that many bytes, bounded by what is left and by MaxObjectData.
func bytesField(r *rbuf, field string) []byte {
	n := r.u32()
	if r.err != nil {
		return nil
	}
	if n > MaxObjectData || int64(n) > int64(len(r.b)-r.off) {
		r.fail("%s: %d bytes do not fit", field, n)
		return nil
	}
	if n == 0 {
		return nil
	}
	return append([]byte{}, r.take(int(n))...)
}

func decodeInetSocket(r *rbuf) ObjectBody {
	n := r.u32()
	r.zero(4, "inet reserved")
	if r.err == nil && (n < 1 || n > maxInetEnds || int64(n)*inetEndMinSize > int64(len(r.b)-r.off)) {
		r.fail("inet socket with %d ends", n)
	}
	s := &InetSocketObject{}
	for i := uint32(0); i < n && r.err == nil; i++ {
		e := InetEnd{Family: r.u16(), Type: r.u16(), Protocol: r.u16(), State: InetState(r.u8())}
		flags := r.u8()
		if r.err == nil && flags&^inetFlagsKnown != 0 {
			r.fail("inet end: unknown flags %#x", flags)
		}
		e.ShutWrite = flags&inetShutWrite != 0
		e.HasAcceptQueue = flags&inetAcceptQueue != 0
		e.QueuedClient = flags&inetQueuedClient != 0
		e.Backlog = r.u32()
		e.Local = decodeInetAddr(r)
		e.Remote = decodeInetAddr(r)
		e.Options = decodeSockOptions(r)
		e.Data = bytesField(r, "inet data")
		nd := r.u32()
		if r.err == nil && int64(nd)*(inetAddrLen+4) > int64(len(r.b)-r.off) {
			r.fail("%d datagrams do not fit", nd)
		}
		for j := uint32(0); j < nd && r.err == nil; j++ {
			d := Datagram{From: decodeInetAddr(r)}
			d.Data = bytesField(r, "datagram")
			e.Datagrams = append(e.Datagrams, d)
		}
		decodeInetAcceptQueue(r, &e)
		s.Ends = append(s.Ends, e)
	}
	return s
}

// String formats a as "addr:port" ("[v6]:port", "-:port" without an address).
func (a InetAddr) String() string {
	ip, ok := netip.AddrFromSlice(a.Addr)
	if !ok {
		return fmt.Sprintf("-:%d", a.Port)
	}
	if a.Scope != 0 {
		ip = ip.WithZone(fmt.Sprint(a.Scope))
	}
	return netip.AddrPortFrom(ip, a.Port).String()
}

func (s *InetSocketObject) describe() string {
	var parts []string
	for _, e := range s.Ends {
		proto := "udp"
		if e.Type == sockStream {
			proto = "tcp"
		}
		if e.Family == afInet6 {
			proto += "6"
		}
		d := fmt.Sprintf("%s %s", proto, e.State)
		if e.State != InetUnbound {
			d += " " + e.Local.String()
		}
		if len(e.Remote.Addr) > 0 {
			d += " -> " + e.Remote.String()
		}
		if e.State == InetListening {
			d += fmt.Sprintf(" backlog %d", e.Backlog)
		}
		if e.ShutWrite {
			d += ", shut down for writing"
		}
		if len(e.Data) > 0 {
			d += fmt.Sprintf(", %d bytes unread", len(e.Data))
		}
		if len(e.Datagrams) > 0 {
			d += fmt.Sprintf(", %d datagrams queued", len(e.Datagrams))
		}
		if len(e.Options) > 0 {
			d += fmt.Sprintf(", %d options", len(e.Options))
		}
		d += e.describeAcceptQueue()
		parts = append(parts, d)
	}
	return strings.Join(parts, "; ")
}

// String names the state.
func (st InetState) String() string {
	if int(st) < len(inetStateNames) {
		return inetStateNames[st]
	}
	return fmt.Sprintf("state-%d", uint8(st))
}

func (s *InetSocketObject) check(p *Process, o *Object) string {
	accept := s.acceptObject()
	if len(s.Ends) < 1 || len(s.Ends) > 2 && !accept || len(s.Ends) > maxInetEnds {
		return fmt.Sprintf("%d ends, want 1 or 2", len(s.Ends))
	}
	if accept {
		if msg := s.checkAcceptObject(); msg != "" {
			return msg
		}
	}
	if o.Descs() != len(s.Ends) {
		return fmt.Sprintf("%d ends but %d open file descriptions", len(s.Ends), o.Descs())
	}
	for _, f := range o.FDs {
		if i := p.fileIndex(f.FD); i >= 0 && p.Files[i].Kind != FileSocket {
			return "fd is not a socket"
		}
	}
	var total int64
	for i := range s.Ends {
		e := &s.Ends[i]
		if msg := e.check(); msg != "" {
			return fmt.Sprintf("end %d: %s", i, msg)
		}
		if len(s.Ends) == 2 && !accept && (e.Type != sockStream || e.State != InetConnected) {
			return fmt.Sprintf("end %d: a pair is two connected TCP ends", i)
		}
		if len(s.Ends) == 1 && e.Type == sockStream && e.State == InetConnected {
			return "a connected TCP socket alone must be recorded as reset"
		}
		total += int64(len(e.Data))
		for _, c := range e.AcceptQueue {
			total += int64(len(c.Data))
		}
		for _, d := range e.Datagrams {
			total += int64(len(d.Data))
		}
	}
	if total > MaxObjectData {
		return "data exceeds MaxObjectData"
	}
	return ""
}

// addrLen is the length of the family's addresses.
func (e *InetEnd) addrLen() int {
	if e.Family == afInet {
		return 4
	}
	return 16
}

func (e *InetEnd) check() string {
	switch {
	case e.Family != afInet && e.Family != afInet6:
		return fmt.Sprintf("family %d is not AF_INET or AF_INET6", e.Family)
	case e.Type == sockStream && e.Protocol != 0 && e.Protocol != ipprotoTCP,
		e.Type == sockDgram && e.Protocol != 0 && e.Protocol != ipprotoUDP:
		return fmt.Sprintf("protocol %d does not match type %d", e.Protocol, e.Type)
	case e.Type != sockStream && e.Type != sockDgram:
		return fmt.Sprintf("type %d is not SOCK_STREAM or SOCK_DGRAM", e.Type)
	case e.State >= inetStateLimit:
		return fmt.Sprintf("unknown state %d", e.State)
	case e.Type == sockDgram && (e.State == InetListening || e.State == InetReset):
		return fmt.Sprintf("a UDP socket cannot be %s", e.State)
	case e.State != InetListening && e.Backlog != 0:
		return "backlog of a socket that is not listening"
	case e.Backlog > maxBacklog:
		return "backlog too large"
	case len(e.Local.Addr) != e.addrLen():
		return fmt.Sprintf("local address of %d bytes for family %d", len(e.Local.Addr), e.Family)
	case e.State == InetUnbound && e.Local.Port != 0,
		e.State != InetUnbound && e.State != InetReset && e.Local.Port == 0:
		return "an unbound socket has port 0 and only it"
	case len(e.Remote.Addr) != 0 && len(e.Remote.Addr) != e.addrLen():
		return fmt.Sprintf("remote address of %d bytes for family %d", len(e.Remote.Addr), e.Family)
	case len(e.Remote.Addr) != 0 && e.State != InetConnected && e.State != InetReset,
		len(e.Remote.Addr) == 0 && e.State == InetConnected:
		return "a remote address belongs to connected sockets and only them"
	case e.ShutWrite && (e.Type != sockStream || (e.State != InetConnected && e.State != InetReset)):
		return "shut down for writing but not a connected or reset TCP end"
	case len(e.Data) > 0 && (e.Type != sockStream || (e.State != InetConnected && e.State != InetReset)):
		return "unread stream data on a socket that is not a connected or reset TCP end"
	case len(e.Datagrams) > 0 && (e.Type != sockDgram || e.State == InetUnbound):
		return "queued datagrams on a socket that is not a bound UDP socket"
	}
	for _, d := range e.Datagrams {
		if len(d.From.Addr) != e.addrLen() {
			return "datagram source address does not match the family"
		}
	}
	if msg := e.checkAcceptQueue(); msg != "" {
		return msg
	}
	return checkSockOptions(e.Options)
}
