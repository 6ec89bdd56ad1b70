package ckpt

import (
	"net/netip"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
)

// joinTCPPeers joins the images' records of a TCP connection between processes of the tree. The
// freeze looks for a socket's peer among the fds of the socket's own process only: an end whose
// peer is in another process is recorded to be reset, under a key of its own, and a connection
// whose both ends one process has is recorded as a pair under the key of one of them, which other
// processes holding only one end do not know. So a reset end joins the group of the image that
// has the same socket (its local and remote addresses) in a pair, or else the group of its peer
// (the addresses swapped); the joined group is rebuilt as one connection (mergeObjectBody). It
// returns the order without the keys joined into others.
func joinTCPPeers(groups map[uint64][]objectMember, order []uint64) []uint64 {
	type conn struct {
		local, remote inetAddrKey
	}
	tcpEnds := func(key uint64) []imgfmt.InetEnd {
		b, ok := groups[key][0].obj.Body.(*imgfmt.InetSocketObject)
		if !ok || len(b.Ends) == 0 || b.Ends[0].Type != 1 /* SOCK_STREAM */ {
			return nil
		}
		return b.Ends
	}
	// Where each connected or reset TCP socket is recorded: pairs first, so that a socket of a
	// pair is found there rather than in another process's reset record of it.
	where := make(map[conn]uint64)
	for _, pairs := range []bool{true, false} {
		for _, key := range order {
			ends := tcpEnds(key)
			if (len(ends) == 2) != pairs {
				continue
			}
			for _, e := range ends {
				c := conn{addrKeyOf(e.Local), addrKeyOf(e.Remote)}
				if _, ok := where[c]; !ok && (e.State == imgfmt.InetConnected || e.State == imgfmt.InetReset) {
					where[c] = key
				}
			}
		}
	}
	into := make(map[uint64]uint64) // A joined key → the key it joined (union-find).
	find := func(k uint64) uint64 {
		for {
			n, ok := into[k]
			if !ok {
				return k
			}
			k = n
		}
	}
	for _, key := range order {
		ends := tcpEnds(key)
		if len(ends) != 1 || ends[0].State != imgfmt.InetReset {
			continue
		}
		e := ends[0]
		self, peer := conn{addrKeyOf(e.Local), addrKeyOf(e.Remote)}, conn{addrKeyOf(e.Remote), addrKeyOf(e.Local)}
		for _, c := range []conn{self, peer} {
			other, ok := where[c]
			if !ok || other == key {
				continue
			}
			if a, b := find(key), find(other); a != b {
				into[a] = b
			}
			break
		}
	}
	var out []uint64
	for _, key := range order {
		if root := find(key); root != key {
			groups[root] = append(groups[root], groups[key]...)
			delete(groups, key)
			continue
		}
		out = append(out, key)
	}
	return out
}

// inetAddrKey is an inet address for comparison: IPv4-mapped IPv6 addresses as IPv4 (an AF_INET6
// socket shows its IPv4 peer so).
type inetAddrKey struct {
	addr netip.Addr
	port uint16
}

func addrKeyOf(a imgfmt.InetAddr) inetAddrKey {
	ip, _ := netip.AddrFromSlice(a.Addr)
	return inetAddrKey{addr: ip.Unmap(), port: a.Port}
}

// joinTCPAcceptQueues joins the group of each TCP client of the tree whose connection waits in
// the accept queue of a listener of another process (its image recorded it to be reset: the
// server end is no fd) into the listener's group, so that the listener and its clients are
// rebuilt once, as one object (mergeInetBody marks the joined ends as clients of the accept
// queue). It returns the order without the joined keys.
func joinTCPAcceptQueues(groups map[uint64][]objectMember, order []uint64) []uint64 {
	clients := make(map[[2]inetAddrKey]uint64)
	for _, key := range order {
		if ms := groups[key]; len(ms) > 0 {
			if e := tcpQueuedClientCandidate(ms[0].obj); e != nil {
				clients[[2]inetAddrKey{addrKeyOf(e.Local), addrKeyOf(e.Remote)}] = key
			}
		}
	}
	if len(clients) == 0 {
		return order
	}
	joined := make(map[uint64]bool)
	for _, key := range order {
		ms := groups[key]
		if joined[key] || len(ms) == 0 {
			continue
		}
		for _, c := range tcpAcceptQueueOf(ms[0].obj) {
			ck, ok := clients[[2]inetAddrKey{addrKeyOf(c.Remote), addrKeyOf(c.Local)}]
			if !ok || ck == key || joined[ck] {
				continue
			}
			groups[key] = append(groups[key], groups[ck]...)
			delete(groups, ck)
			joined[ck] = true
		}
	}
	return withoutJoined(order, joined) // obj_accept_merge.go
}

// tcpAcceptQueueOf returns the accept queue of o's listening TCP end, or nil.
func tcpAcceptQueueOf(o *imgfmt.Object) []imgfmt.InetPendingConn {
	b, ok := o.Body.(*imgfmt.InetSocketObject)
	if !ok {
		return nil
	}
	li := b.AcceptListener()
	if li < 0 {
		return nil
	}
	return b.Ends[li].AcceptQueue
}

// mergeInetBody returns the inet socket body of the merged descriptions: each end from an image
// that has it. A connection whose ends were in two processes (each image saw its peer outside and
// recorded it to be reset) is one connection again; an end from a member whose object is a client
// joined into a listener's group (joinTCPAcceptQueues) becomes a client of its accept queue.
func mergeInetBody(members []objectMember, merged []descRef) (imgfmt.ObjectBody, error) {
	q := tcpAcceptQueueOf(members[0].obj)
	if len(merged) > 2 && q == nil {
		return nil, invalidf("an inet socket connection with %d ends", len(merged))
	}
	nb := &imgfmt.InetSocketObject{}
	for _, ref := range merged {
		m := members[ref.member]
		mb := m.obj.Body.(*imgfmt.InetSocketObject)
		if int(ref.desc) >= len(mb.Ends) {
			return nil, invalidf("the inet socket's image has no end %d", ref.desc)
		}
		e := mb.Ends[ref.desc]
		if q != nil && m.obj.Key != members[0].obj.Key {
			idx := -1
			for i, c := range q {
				if addrKeyOf(c.Remote) == addrKeyOf(e.Local) && addrKeyOf(c.Local) == addrKeyOf(e.Remote) {
					idx = i
				}
			}
			if idx < 0 || e.QueuedClient || e.State != imgfmt.InetReset {
				return nil, invalidf("pid %d: a TCP socket joined to a listener that does not queue it", m.pid)
			}
			e.State, e.QueuedClient, e.Pending = imgfmt.InetConnected, true, uint32(idx)
		}
		nb.Ends = append(nb.Ends, e)
	}
	if q == nil && len(nb.Ends) == 2 {
		for i := range nb.Ends {
			if nb.Ends[i].State == imgfmt.InetReset {
				nb.Ends[i].State = imgfmt.InetConnected
			}
		}
	}
	return nb, nil
}
