package ckpt

import (
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
)

// Accept queues across the processes of a restored tree. A client that connected to a listener of
// another process, which had not accepted it at freeze, is in its own image as a connected socket
// whose peer is outside (an object of its own, keyed by the connection); the listener's image lists
// the connection's key in its accept queue (obj_unix_accept.go). joinUnixAcceptQueues joins the
// client's group into the listener's, so that the listener and its clients are rebuilt once, as one
// object (mergeUnixBody marks the joined ends as clients of the accept queue): the clients connect
// to the rebuilt listener in the recorded order and its accept() returns them with their data.

// joinUnixAcceptQueues joins the groups of clients waiting in the accept queue of a listener of
// the tree into the listener's group and returns the order without the joined keys.
func joinUnixAcceptQueues(groups map[uint64][]objectMember, order []uint64) []uint64 {
	joined := make(map[uint64]bool)
	for _, key := range order {
		ms := groups[key]
		if joined[key] || len(ms) == 0 {
			continue
		}
		q := acceptQueueOf(ms[0].obj)
		for _, c := range q {
			cms, ok := groups[c.Key]
			if c.Key == key || joined[c.Key] || !ok {
				continue
			}
			clients := true
			for _, m := range cms {
				clients = clients && pendingClient(m.obj)
			}
			if !clients {
				continue
			}
			groups[key] = append(groups[key], cms...)
			delete(groups, c.Key)
			joined[c.Key] = true
		}
	}
	return withoutJoined(order, joined) // obj_accept_merge.go
}

// acceptQueueOf returns the accept queue of o's listening unix socket end, or nil.
func acceptQueueOf(o *imgfmt.Object) []imgfmt.UnixPendingConn {
	b, ok := o.Body.(*imgfmt.UnixSocketObject)
	if !ok {
		return nil
	}
	li := b.AcceptListener()
	if li < 0 {
		return nil
	}
	return b.Ends[li].AcceptQueue
}

// mergeUnixBody returns the unix socket body of the merged descriptions: each end from an image
// that has it. An end from a member whose object is a client joined into a listener's group
// (joinUnixAcceptQueues) becomes a client of the listener's accept queue.
func mergeUnixBody(members []objectMember, merged []descRef) (imgfmt.ObjectBody, error) {
	b := members[0].obj.Body.(*imgfmt.UnixSocketObject)
	q := acceptQueueOf(members[0].obj)
	if len(merged) > 2 && q == nil {
		return nil, invalidf("a unix socket connection with %d ends", len(merged))
	}
	nb := &imgfmt.UnixSocketObject{Type: b.Type}
	for _, ref := range merged {
		m := members[ref.member]
		mb, ok := m.obj.Body.(*imgfmt.UnixSocketObject)
		if !ok || mb.Type != b.Type || int(ref.desc) >= len(mb.Ends) {
			return nil, invalidf("the unix socket's images disagree (end %d of pid %d)", ref.desc, m.pid)
		}
		e := mb.Ends[ref.desc]
		if m.obj.Key != members[0].obj.Key {
			idx := -1
			for i, c := range q {
				if c.Key == m.obj.Key {
					idx = i
				}
			}
			if idx < 0 || e.Flags&imgfmt.UnixQueuedClient != 0 {
				return nil, invalidf("pid %d: a unix socket joined to a listener that does not queue it", m.pid)
			}
			e.Flags |= imgfmt.UnixQueuedClient
			e.Pending = uint32(idx)
		}
		nb.Ends = append(nb.Ends, e)
	}
	return nb, nil
}
