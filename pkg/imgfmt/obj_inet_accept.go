package imgfmt

import "fmt"

// Accept queues of listening TCP sockets (format 1.6). A connection that a client made but the
// server had not accept()ed yet at freeze is recorded on the listening end (InetEnd.AcceptQueue,
// flags bit 1): one InetPendingConn per connection, in accept order, with the server end's local
// and remote addresses and the bytes the client had sent into it. A client end that the image
// also has is a further end of the listener's object (flags bit 2, InetEnd.Pending = its index in
// the accept queue): a thaw connects it to the rebuilt listener in the recorded order, from its
// recorded port when it is free, and sends the bytes again, so that accept(2) returns it. An entry
// without a client end (the client is outside the image) is not rebuilt.
//
// Layout, after an end's datagrams: with flags bit 1, u32 entry count, u32 reserved (0), then each
// entry: local InetAddr, remote InetAddr, u32 length + the bytes; with flags bit 2, u32 index, u32
// reserved (0).

// minorTCPAcceptQueue is the first revision with TCP accept queues.
const minorTCPAcceptQueue = 6

// Flags of an inet end (besides inetShutWrite).
const (
	inetAcceptQueue  = 1 << 1 // A listening end whose accept queue follows its datagrams.
	inetQueuedClient = 1 << 2 // A client of the accept queue of this object's listening end.
	inetFlagsKnown   = inetShutWrite | inetAcceptQueue | inetQueuedClient
	// inetPendingFixedSize is an accept queue entry without its bytes.
	inetPendingFixedSize = 2*inetAddrLen + 4
)

// InetPendingConn is one connection waiting in a listening TCP socket's accept queue.
type InetPendingConn struct {
	// Local and Remote are the addresses of the server end (accept(2) returns Remote).
	Local, Remote InetAddr
	// Data is what the client had sent that the server had not read, oldest first.
	Data []byte
}

// hasTCPAcceptQueue reports whether p has a TCP listener with an accept queue.
func hasTCPAcceptQueue(p *Process) bool {
	for i := range p.Objects {
		if s, ok := p.Objects[i].Body.(*InetSocketObject); ok {
			for j := range s.Ends {
				if s.Ends[j].HasAcceptQueue || s.Ends[j].QueuedClient {
					return true
				}
			}
		}
	}
	return false
}

// AcceptListener returns the index of s's listening end when its other ends are clients of its
// accept queue, or -1.
func (s *InetSocketObject) AcceptListener() int {
	for i := range s.Ends {
		if s.Ends[i].State == InetListening {
			return i
		}
	}
	return -1
}

// acceptObject reports whether s is a listener with clients of its accept queue as further ends.
func (s *InetSocketObject) acceptObject() bool {
	for i := range s.Ends {
		if s.Ends[i].QueuedClient {
			return true
		}
	}
	return false
}

// checkAcceptObject checks an object whose ends are a listener and clients of its accept queue.
func (s *InetSocketObject) checkAcceptObject() string {
	li := s.AcceptListener()
	if li < 0 || !s.Ends[li].HasAcceptQueue {
		return "queued clients without a listening end that has an accept queue"
	}
	l := &s.Ends[li]
	seen := make(map[uint32]bool)
	for i := range s.Ends {
		e := &s.Ends[i]
		if i == li {
			continue
		}
		switch {
		case !e.QueuedClient:
			return fmt.Sprintf("end %d: neither the listener nor a client of its accept queue", i)
		case e.Type != sockStream || e.State != InetConnected:
			return fmt.Sprintf("end %d: a client of an accept queue is a connected TCP end", i)
		case e.Pending >= uint32(len(l.AcceptQueue)) || seen[e.Pending]:
			return fmt.Sprintf("end %d: accept queue index %d (of %d) taken or out of range", i, e.Pending, len(l.AcceptQueue))
		}
		seen[e.Pending] = true
	}
	return ""
}

// checkInetAcceptQueue checks one end's accept queue fields.
func (e *InetEnd) checkAcceptQueue() string {
	switch {
	case e.HasAcceptQueue && (e.Type != sockStream || e.State != InetListening):
		return "an accept queue on an end that is not a listening TCP socket"
	case !e.HasAcceptQueue && len(e.AcceptQueue) > 0:
		return "accept queue entries without the accept queue flag"
	case uint64(len(e.AcceptQueue)) > uint64(e.Backlog)+1:
		return fmt.Sprintf("%d pending connections for a backlog of %d", len(e.AcceptQueue), e.Backlog)
	case !e.QueuedClient && e.Pending != 0:
		return "an accept queue index on an end that is no queued client"
	}
	for i, c := range e.AcceptQueue {
		if len(c.Local.Addr) != e.addrLen() || len(c.Remote.Addr) != e.addrLen() {
			return fmt.Sprintf("accept queue entry %d: addresses do not match the family", i)
		}
	}
	return ""
}

func encodeInetAcceptQueue(w *wbuf, e *InetEnd) {
	if e.HasAcceptQueue {
		w.u32(uint32(len(e.AcceptQueue)))
		w.u32(0)
		for _, c := range e.AcceptQueue {
			encodeInetAddr(w, c.Local)
			encodeInetAddr(w, c.Remote)
			w.u32(uint32(len(c.Data)))
			w.bytes(c.Data)
		}
	}
	if e.QueuedClient {
		w.u32(e.Pending)
		w.u32(0)
	}
}

func decodeInetAcceptQueue(r *rbuf, e *InetEnd) {
	if e.HasAcceptQueue {
		n := r.u32()
		r.zero(4, "inet accept queue reserved")
		if r.err == nil && int64(n)*inetPendingFixedSize > int64(len(r.b)-r.off) {
			r.fail("%d accept queue entries do not fit", n)
		}
		for i := uint32(0); i < n && r.err == nil; i++ {
			c := InetPendingConn{Local: decodeInetAddr(r), Remote: decodeInetAddr(r)}
			c.Data = bytesField(r, "accept queue data")
			e.AcceptQueue = append(e.AcceptQueue, c)
		}
	}
	if e.QueuedClient {
		e.Pending = r.u32()
		r.zero(4, "inet queued client reserved")
	}
}

// describeAcceptQueue returns inspect's words for an end's accept queue fields, or "".
func (e *InetEnd) describeAcceptQueue() string {
	if e.QueuedClient {
		return fmt.Sprintf(", client %d of the accept queue", e.Pending)
	}
	if !e.HasAcceptQueue {
		return ""
	}
	var n int
	for _, c := range e.AcceptQueue {
		n += len(c.Data)
	}
	return fmt.Sprintf(", accept queue: %d connections (%d bytes sent by their clients)", len(e.AcceptQueue), n)
}
