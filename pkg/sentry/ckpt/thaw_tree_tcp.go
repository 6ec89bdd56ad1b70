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
