package imgfmt

import (
	"bytes"
	"fmt"
	"strings"
)

// UnixSocketObject is an AF_UNIX socket (ObjUnixSocket), or both ends of a connection whose two
// sockets are in the image (a socketpair, or a connect/accept pair): Ends[d] is description d.
// A connected socket whose peer is not in the image has one end; a thaw gives it a peer that is
// gone. Body layout: u32 type, u32 number of ends (1 or 2), then each end (see UnixSocketEnd).
type UnixSocketObject struct {
	Type uint32 // SOCK_STREAM (1), SOCK_DGRAM (2) or SOCK_SEQPACKET (5).
	Ends []UnixSocketEnd
}

// UnixSocketEnd is one socket. Layout: u32 flags (Unix* bits; bit 8 set: the options are a
// SockOption list, the layout every socket body shares), u32 backlog, u32 pending, u32 message
// count, u32 address length, u32 peer address length, the options (a u32 count and the options,
// sockopt_list.go), the address bytes, the peer address bytes, then the messages (UnixMessage).
// Bodies written before the list (bit 8 clear) hold a fixed 48-byte block of SOL_SOCKET options
// there instead, which the decoder turns into the list (sockopt.go).
type UnixSocketEnd struct {
	Flags   uint32
	Backlog uint32 // listen(2) backlog (UnixListening).
	Pending uint32 // Connections waiting to be accepted at freeze (not restored).
	// Addr is the local address as getsockname reports it: "" when unbound, a path, or an abstract
	// name with its leading NUL byte.
	Addr string
	// Peer is the peer's address as getpeername reports it (connected sockets; "" for an unbound
	// peer such as the other end of a socketpair).
	Peer string
	// Options are the socket's SOL_SOCKET options as getsockopt(2) reports them.
	Options []SockOption
	// Queue is the receive queue, oldest message first (for a stream socket the boundaries are
	// those of the writes, and matter only for the control messages they carry).
	Queue []UnixMessage
	// AcceptQueue (UnixAcceptQueue, a listening end) lists the connections waiting in the accept
	// queue at freeze, in the order accept(2) would return them (obj_unix_accept.go).
	AcceptQueue []UnixPendingConn
	// legacyOptions says the decoder read the options from the fixed block of older images: the
	// encoder writes that block back while the options are unchanged (sockopt.go legacyBlock).
	legacyOptions bool
}

// UnixSocketEnd flags.
const (
	UnixConnected      = 1 << 0 // Connected: to a peer, or a datagram socket to Peer's address.
	UnixListening      = 1 << 1 // Listening (stream, seqpacket), bound to Addr.
	UnixConnectionless = 1 << 2 // A datagram socket made by socket(2), not socketpair(2).
	UnixRecvClosed     = 1 << 3 // Receive side closed: own SHUT_RD, or the peer shut down or closed.
	UnixSendClosed     = 1 << 4 // Send side closed: the peer's receive side is closed.
	UnixSendShutdown   = 1 << 5 // Own SHUT_WR.
	UnixReset          = 1 << 6 // Reads report ECONNRESET once the queue is drained.
	UnixHost           = 1 << 7 // Backed by a host socket: the queue is not in the image.
	// UnixAcceptQueue (format 1.5): a listening end whose accept queue follows its messages.
	UnixAcceptQueue = 1 << 9
	// UnixQueuedClient (format 1.5): a connected end whose connection waits in the accept queue
	// of the object's listening end; its Pending field is the index in that end's AcceptQueue.
	UnixQueuedClient = 1 << 10
	unixKnown        = 1<<8 - 1 | UnixAcceptQueue | UnixQueuedClient
	// unixOptList marks, in an encoded end's flags, options encoded as a SockOption list; it
	// never appears in UnixSocketEnd.Flags.
	unixOptList = 1 << 8
)

// UnixMessage is one message of a receive queue. Layout: u32 data length, u32 source address
// length, u32 flags (bit 0: carried SCM_CREDENTIALS), u32 fds in flight (SCM_RIGHTS), u32 number
// of Files, the source address bytes, the data bytes, then the Files.
type UnixMessage struct {
	Data []byte
	From string // The sender's bound address, "" if unbound.
	// Creds says the message carried SCM_CREDENTIALS (the thawed message carries the thawing
	// process's credentials).
	Creds bool
	// Rights is how many fds were in flight with the message (SCM_RIGHTS).
	Rights uint32
	// Files are those of the fds in flight that a thaw reopens by path (files, directories,
	// devices), in their order; the others are dropped (docs/sockets.md). len(Files) ≤ Rights.
	Files []UnixRightsFile
}

// UnixRightsFile is an fd in flight that a thaw reopens. Layout: u32 kind (FileKind), u32 status
// flags, i64 offset (-1 if not seekable), the 48-byte handle, the handle's path (u32 length,
// bytes).
type UnixRightsFile struct {
	Kind        FileKind
	StatusFlags uint32
	Offset      int64
	Handle      *FileHandle
}

// Socket types and limits of AF_UNIX bodies.
const (
	sockStream    = 1
	sockDgram     = 2
	sockSeqpacket = 5
	// UnixAddrMax is the longest AF_UNIX address (sun_path).
	UnixAddrMax        = 108
	unixEndFixedSize   = 24 // Without its options.
	unixMsgFixedSize   = 20
	unixFileFixedSize  = 16 + handleSize + 4
	unixMsgCreds       = 1 << 0
	maxUnixBacklog     = 1 << 20
	maxUnixRightsInMsg = 253 // SCM_MAX_FD
)

// Kind implements ObjectBody.
func (*UnixSocketObject) Kind() ObjectKind { return ObjUnixSocket }

// AddDescription appends the end of other (a one-end body of the same connection, captured from
// the connection's other socket) as the next description.
func (u *UnixSocketObject) AddDescription(other ObjectBody) error {
	o, ok := other.(*UnixSocketObject)
	if !ok || len(o.Ends) != 1 || o.Type != u.Type {
		return fmt.Errorf("unix socket: cannot join a %T as the peer of a type %d socket", other, u.Type)
	}
	u.Ends = append(u.Ends, o.Ends[0])
	return nil
}

func (u *UnixSocketObject) encode(w *wbuf) {
	w.u32(u.Type)
	w.u32(uint32(len(u.Ends)))
	for i := range u.Ends {
		e := &u.Ends[i]
		block, legacy := legacyBlock(e)
		if legacy {
			w.u32(e.Flags)
		} else {
			w.u32(e.Flags | unixOptList)
		}
		w.u32(e.Backlog)
		w.u32(e.Pending)
		w.u32(uint32(len(e.Queue)))
		w.u32(uint32(len(e.Addr)))
		w.u32(uint32(len(e.Peer)))
		if legacy {
			block.encode(w)
		} else {
			encodeSockOptions(w, e.Options)
		}
		w.b = append(w.b, e.Addr...)
		w.b = append(w.b, e.Peer...)
		encodeUnixMessages(w, e.Queue)
		if e.Flags&UnixAcceptQueue != 0 {
			encodeAcceptQueue(w, e.AcceptQueue)
		}
	}
}

// encodeUnixMessages appends msgs (UnixMessage layout each).
func encodeUnixMessages(w *wbuf, msgs []UnixMessage) {
	for _, m := range msgs {
		w.u32(uint32(len(m.Data)))
		w.u32(uint32(len(m.From)))
		var flags uint32
		if m.Creds {
			flags |= unixMsgCreds
		}
		w.u32(flags)
		w.u32(m.Rights)
		w.u32(uint32(len(m.Files)))
		w.b = append(w.b, m.From...)
		w.b = append(w.b, m.Data...)
		for _, f := range m.Files {
			w.u32(uint32(f.Kind))
			w.u32(f.StatusFlags)
			w.i64(f.Offset)
			encodeHandle(w, f.Handle)
			w.str(handlePath(f.Handle))
		}
	}
}

func decodeUnixSocket(r *rbuf) ObjectBody {
	u := &UnixSocketObject{Type: r.u32()}
	n := r.u32()
	if r.err == nil && (n == 0 || int64(n)*unixEndFixedSize > int64(len(r.b)-r.off)) {
		r.fail("unix socket: %d ends (want at least 1, each %d bytes)", n, unixEndFixedSize)
	}
	var data int64
	for i := 0; r.err == nil && i < int(n); i++ {
		var e UnixSocketEnd
		e.Flags = r.u32()
		list := e.Flags&unixOptList != 0
		e.Flags &^= unixOptList
		e.Backlog = r.u32()
		e.Pending = r.u32()
		nmsg := r.u32()
		alen, plen := r.u32(), r.u32()
		if list {
			e.Options = decodeSockOptions(r)
		} else if o := decodeLegacyUnixOptions(r); r.err == nil {
			e.Options, e.legacyOptions = o.list(), true
		}
		if r.err == nil && (alen > UnixAddrMax || plen > UnixAddrMax) {
			r.fail("unix socket: address length %d/%d exceeds %d", alen, plen, UnixAddrMax)
		}
		e.Addr = string(r.take(int(alen)))
		e.Peer = string(r.take(int(plen)))
		e.Queue = decodeUnixMessages(r, nmsg, &data)
		if r.err == nil && e.Flags&UnixAcceptQueue != 0 {
			e.AcceptQueue = decodeAcceptQueue(r, &data)
		}
		u.Ends = append(u.Ends, e)
	}
	return u
}

// decodeUnixMessages reads n messages; data accumulates their bytes, bounded by MaxObjectData.
func decodeUnixMessages(r *rbuf, n uint32, data *int64) []UnixMessage {
	if r.err == nil && int64(n)*unixMsgFixedSize > int64(len(r.b)-r.off) {
		r.fail("unix socket: %d messages do not fit in the note", n)
	}
	var out []UnixMessage
	for j := 0; r.err == nil && j < int(n); j++ {
		dlen, flen, flags, rights, nfiles := r.u32(), r.u32(), r.u32(), r.u32(), r.u32()
		if r.err == nil && flags&^unixMsgCreds != 0 {
			r.fail("unix socket: unknown message flags %#x", flags)
		}
		if r.err == nil && flen > UnixAddrMax {
			r.fail("unix socket: source address length %d exceeds %d", flen, UnixAddrMax)
		}
		if *data += int64(dlen); r.err == nil && *data > MaxObjectData {
			r.fail("unix socket: queued data exceeds %d bytes", MaxObjectData)
		}
		m := UnixMessage{From: string(r.take(int(flen))), Creds: flags&unixMsgCreds != 0, Rights: rights}
		m.Data = bytes.Clone(r.take(int(dlen)))
		if m.Data == nil {
			m.Data = []byte{}
		}
		if r.err == nil && (nfiles > rights || int64(nfiles)*unixFileFixedSize > int64(len(r.b)-r.off)) {
			r.fail("unix socket: %d files in flight do not fit (%d fds in flight)", nfiles, rights)
		}
		for k := 0; r.err == nil && k < int(nfiles); k++ {
			f := UnixRightsFile{Kind: FileKind(r.u32()), StatusFlags: r.u32(), Offset: r.i64()}
			f.Handle = decodeHandle(r, true)
			decodeHandlePath(r, f.Handle)
			m.Files = append(m.Files, f)
		}
		out = append(out, m)
	}
	return out
}

// unixAddrCheck returns why a is not a valid AF_UNIX address, or "".
func unixAddrCheck(a string) string {
	if len(a) > UnixAddrMax {
		return fmt.Sprintf("address of %d bytes", len(a))
	}
	if a != "" && a[0] != 0 && strings.IndexByte(a, 0) >= 0 {
		return "path address contains a NUL byte"
	}
	return ""
}

func (u *UnixSocketObject) check(p *Process, o *Object) string {
	switch u.Type {
	case sockStream, sockDgram, sockSeqpacket:
	default:
		return fmt.Sprintf("socket type %d", u.Type)
	}
	accept := u.acceptObject()
	if len(u.Ends) == 0 || (len(u.Ends) > 2 && !accept) {
		return fmt.Sprintf("%d ends", len(u.Ends))
	}
	if len(u.Ends) != o.Descs() {
		return fmt.Sprintf("%d ends for %d open file descriptions", len(u.Ends), o.Descs())
	}
	var data int64
	for i := range u.Ends {
		e := &u.Ends[i]
		if msg := u.checkEnd(e); msg != "" {
			return fmt.Sprintf("end %d: %s", i, msg)
		}
		for _, m := range e.Queue {
			data += int64(len(m.Data))
		}
		for _, c := range e.AcceptQueue {
			for _, m := range c.Queue {
				data += int64(len(m.Data))
			}
		}
	}
	if accept {
		if msg := u.checkAcceptObject(); msg != "" {
			return msg
		}
	}
	if data > MaxObjectData {
		return fmt.Sprintf("queued data exceeds %d bytes", MaxObjectData)
	}
	for _, f := range o.FDs {
		if i := p.fileIndex(f.FD); i >= 0 && p.Files[i].Kind != FileSocket {
			return "fd is not a socket"
		}
	}
	return ""
}

func (u *UnixSocketObject) checkEnd(e *UnixSocketEnd) string {
	if e.Flags&^unixKnown != 0 {
		return fmt.Sprintf("unknown flags %#x", e.Flags)
	}
	for _, a := range []string{e.Addr, e.Peer} {
		if msg := unixAddrCheck(a); msg != "" {
			return msg
		}
	}
	if msg := checkSockOptions(e.Options); msg != "" {
		return msg
	}
	for _, o := range e.Options {
		if o.Level != solSocket {
			return fmt.Sprintf("socket option of level %d (an AF_UNIX socket has SOL_SOCKET options only)", o.Level)
		}
	}
	connected := e.Flags&UnixConnected != 0
	connless := e.Flags&UnixConnectionless != 0
	switch {
	case len(u.Ends) == 2 && !u.acceptObject() && (!connected || connless || e.Flags&(UnixListening|UnixHost) != 0):
		return "both ends of a connection must be connected, connection-oriented sockets"
	case connless && u.Type != sockDgram:
		return "a connectionless socket must be SOCK_DGRAM"
	case e.Flags&UnixListening != 0 && (connected || connless || e.Addr == "" || u.Type == sockDgram):
		return "a listening socket must be an unconnected, bound stream or seqpacket socket"
	case e.Flags&UnixListening == 0 && e.Flags&UnixAcceptQueue != 0:
		return "an accept queue on a socket that is not listening"
	case e.Flags&UnixAcceptQueue == 0 && len(e.AcceptQueue) > 0:
		return "accept queue entries without the accept-queue flag"
	case e.Flags&UnixAcceptQueue != 0 && uint32(len(e.AcceptQueue)) != e.Pending:
		return fmt.Sprintf("%d accept queue entries for %d pending connections", len(e.AcceptQueue), e.Pending)
	case e.Flags&UnixQueuedClient != 0 && (!connected || connless || e.Flags&(UnixListening|UnixHost) != 0 || len(e.Queue) > 0):
		return "a queued client must be a connected, connection-oriented socket with nothing queued (its peer was never accepted)"
	case e.Flags&UnixListening == 0 && e.Flags&UnixQueuedClient == 0 && (e.Backlog != 0 || e.Pending != 0):
		return "backlog on a socket that is not listening"
	case e.Backlog > maxUnixBacklog:
		return fmt.Sprintf("backlog %d exceeds %d", e.Backlog, maxUnixBacklog)
	case len(e.Queue) > 0 && !connected && !connless:
		return "queued data on an unconnected socket"
	case e.Flags&UnixHost != 0 && (!connected || len(e.Queue) > 0):
		return "a host-backed socket must be connected and carry no queue"
	case !connected && e.Peer != "":
		return "peer address on an unconnected socket"
	case !connected && !connless && e.Flags&(UnixRecvClosed|UnixSendClosed|UnixSendShutdown|UnixReset) != 0:
		return "shutdown state on an unconnected socket"
	}
	if msg := checkAcceptQueue(e); msg != "" {
		return msg
	}
	return checkUnixMessages(e.Queue)
}

// checkUnixMessages returns why a queue's messages are not valid, or "".
func checkUnixMessages(msgs []UnixMessage) string {
	for _, m := range msgs {
		if msg := unixAddrCheck(m.From); msg != "" {
			return "message source: " + msg
		}
		if m.Rights > maxUnixRightsInMsg {
			return fmt.Sprintf("%d fds in flight in one message", m.Rights)
		}
		if len(m.Files) > int(m.Rights) {
			return fmt.Sprintf("%d files for %d fds in flight", len(m.Files), m.Rights)
		}
		for _, f := range m.Files {
			switch f.Kind {
			case FileRegular, FileDirectory, FileCharDev, FileBlockDev:
			default:
				return fmt.Sprintf("fd in flight of kind %d cannot be reopened", f.Kind)
			}
			if f.Handle == nil {
				return "fd in flight without a handle"
			}
			if msg := checkHandle(f.Handle); msg != "" {
				return "fd in flight: " + msg
			}
			if f.Offset < -1 {
				return "fd in flight: negative offset"
			}
		}
	}
	return ""
}

func (u *UnixSocketObject) describe() string {
	types := map[uint32]string{sockStream: "stream", sockDgram: "dgram", sockSeqpacket: "seqpacket"}
	var parts []string
	for i := range u.Ends {
		parts = append(parts, u.Ends[i].describe())
	}
	return types[u.Type] + " " + strings.Join(parts, "; ")
}

func (e *UnixSocketEnd) describe() string {
	var parts []string
	switch {
	case e.Flags&UnixListening != 0:
		parts = append(parts, fmt.Sprintf("listening backlog %d (%d pending)", e.Backlog, e.Pending))
	case e.Flags&UnixQueuedClient != 0:
		parts = append(parts, fmt.Sprintf("client %d of the accept queue, connected to %q", e.Pending, e.Peer))
	case e.Flags&UnixConnected != 0 && e.Peer == "":
		parts = append(parts, "connected")
	case e.Flags&UnixConnected != 0:
		parts = append(parts, fmt.Sprintf("connected to %q", e.Peer))
	default:
		parts = append(parts, "unconnected")
	}
	if e.Addr != "" {
		parts = append(parts, fmt.Sprintf("bound to %q", e.Addr))
	}
	for _, f := range []struct {
		bit  uint32
		name string
	}{{UnixConnectionless, "connectionless"}, {UnixRecvClosed, "recv-closed"}, {UnixSendClosed, "send-closed"},
		{UnixSendShutdown, "shut-wr"}, {UnixReset, "reset"}, {UnixHost, "host"}} {
		if e.Flags&f.bit != 0 {
			parts = append(parts, f.name)
		}
	}
	var n, files int
	var rights uint32
	for _, m := range e.Queue {
		n += len(m.Data)
		rights += m.Rights
		files += len(m.Files)
	}
	parts = append(parts, fmt.Sprintf("%d messages %d bytes queued", len(e.Queue), n))
	if d := e.describeAcceptQueue(); d != "" {
		parts = append(parts, d)
	}
	if rights > 0 {
		parts = append(parts, fmt.Sprintf("%d fds in flight (%d reopened, %d dropped)", rights, files, int(rights)-files))
	}
	if d := describeSockOptions(e.Options); d != "" {
		parts = append(parts, d)
	}
	return strings.Join(parts, ", ")
}
