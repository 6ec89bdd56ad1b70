package imgfmt

import "fmt"

// Accept queues of listening AF_UNIX sockets (format 1.5). A connection that a client made but the
// server had not accept()ed yet at freeze is recorded on the listening end (UnixAcceptQueue): one
// UnixPendingConn per connection, in accept order, each with the connection's key and the bytes the
// client had sent into it. A client end that the image also has is an end of the listener's object
// (UnixQueuedClient, Pending = its index in the accept queue): a thaw connects it to the rebuilt
// listener in the recorded order and sends the bytes again, so that accept(2) returns it. An entry
// without a client end (the client is outside the image) is not rebuilt.
//
// Layout, after an end's messages when its flags have UnixAcceptQueue: u32 entry count (= the end's
// Pending), u32 reserved (0), then each entry: u64 key, u32 reserved (0), u32 message count, then
// the messages (UnixMessage layout).

// minorAcceptQueue is the first revision with accept queues.
const minorAcceptQueue = 5

// unixPendingFixedSize is an accept queue entry without its messages.
const unixPendingFixedSize = 16

// UnixPendingConn is one connection waiting in a listening socket's accept queue.
type UnixPendingConn struct {
	// Key identifies the connection among the images of one freeze: the Key of the client's
	// object in the image (or another image of the freeze) that has the client end; never 0.
	Key uint64
	// Queue is what the client had sent that the server had not read (the accepted socket's
	// receive queue), oldest first.
	Queue []UnixMessage
}

// hasAcceptQueue reports whether p has a unix socket end with an accept queue or a queued client.
func hasAcceptQueue(p *Process) bool {
	for i := range p.Objects {
		if u, ok := p.Objects[i].Body.(*UnixSocketObject); ok {
			for j := range u.Ends {
				if u.Ends[j].Flags&UnixAcceptQueue != 0 {
					return true
				}
			}
		}
	}
	return false
}

// acceptObject reports whether u is a listener with clients of its accept queue as further ends.
func (u *UnixSocketObject) acceptObject() bool {
	for i := range u.Ends {
		if u.Ends[i].Flags&UnixQueuedClient != 0 {
			return true
		}
	}
	return false
}

// AcceptListener returns the index of u's listening end, or -1.
func (u *UnixSocketObject) AcceptListener() int {
	for i := range u.Ends {
		if u.Ends[i].Flags&UnixListening != 0 {
			return i
		}
	}
	return -1
}

// checkAcceptObject checks an object whose ends are a listener and clients of its accept queue.
func (u *UnixSocketObject) checkAcceptObject() string {
	li := u.AcceptListener()
	if li < 0 || u.Ends[li].Flags&UnixAcceptQueue == 0 {
		return "queued clients without a listening end that has an accept queue"
	}
	l := &u.Ends[li]
	seen := make(map[uint32]bool)
	for i := range u.Ends {
		e := &u.Ends[i]
		if i == li {
			continue
		}
		if e.Flags&UnixQueuedClient == 0 {
			return fmt.Sprintf("end %d: neither the listener nor a client of its accept queue", i)
		}
		if e.Backlog != 0 || e.Pending >= uint32(len(l.AcceptQueue)) || seen[e.Pending] {
			return fmt.Sprintf("end %d: accept queue index %d (of %d) taken or out of range", i, e.Pending, len(l.AcceptQueue))
		}
		seen[e.Pending] = true
	}
	return ""
}

// checkAcceptQueue checks a listening end's accept queue entries.
func checkAcceptQueue(e *UnixSocketEnd) string {
	if e.Flags&UnixAcceptQueue == 0 {
		return ""
	}
	if uint64(len(e.AcceptQueue)) > uint64(e.Backlog)+1 {
		return fmt.Sprintf("%d pending connections for a backlog of %d", len(e.AcceptQueue), e.Backlog)
	}
	for i, c := range e.AcceptQueue {
		if c.Key == 0 {
			return fmt.Sprintf("accept queue entry %d without a key", i)
		}
		if msg := checkUnixMessages(c.Queue); msg != "" {
			return fmt.Sprintf("accept queue entry %d: %s", i, msg)
		}
	}
	return ""
}

func encodeAcceptQueue(w *wbuf, q []UnixPendingConn) {
	w.u32(uint32(len(q)))
	w.u32(0)
	for _, c := range q {
		w.u64(c.Key)
		w.u32(0)
		w.u32(uint32(len(c.Queue)))
		encodeUnixMessages(w, c.Queue)
	}
}

// decodeAcceptQueue reads an accept queue; data accumulates the bytes of its messages.
func decodeAcceptQueue(r *rbuf, data *int64) []UnixPendingConn {
	n, reserved := r.u32(), r.u32()
	if r.err == nil && reserved != 0 {
		r.fail("unix socket: accept queue reserved field %#x", reserved)
	}
	if r.err == nil && int64(n)*unixPendingFixedSize > int64(len(r.b)-r.off) {
		r.fail("unix socket: %d accept queue entries do not fit in the note", n)
	}
	var out []UnixPendingConn
	for i := 0; r.err == nil && i < int(n); i++ {
		c := UnixPendingConn{Key: r.u64()}
		reserved, nmsg := r.u32(), r.u32()
		if r.err == nil && reserved != 0 {
			r.fail("unix socket: accept queue entry %d: reserved field %#x", i, reserved)
		}
		c.Queue = decodeUnixMessages(r, nmsg, data)
		out = append(out, c)
	}
	return out
}

// describeAcceptQueue returns inspect's words for a listening end's accept queue, or "".
func (e *UnixSocketEnd) describeAcceptQueue() string {
	if e.Flags&UnixAcceptQueue == 0 {
		return ""
	}
	var n, bytes int
	for _, c := range e.AcceptQueue {
		n += len(c.Queue)
		for _, m := range c.Queue {
			bytes += len(m.Data)
		}
	}
	return fmt.Sprintf("accept queue: %d connections (%d messages %d bytes sent by their clients)", len(e.AcceptQueue), n, bytes)
}
