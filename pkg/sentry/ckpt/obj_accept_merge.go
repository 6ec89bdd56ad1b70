package ckpt

import "github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"

// What the unix and the TCP accept queues share when their clients are joined to their listener
// (obj_unix_accept.go, obj_inet_accept.go: within one image; thaw_tree_unix.go, thaw_tree_tcp.go:
// across the images of a tree).

// withoutRemoved returns objects without those at the indices in removed, renumbered from 1 (an
// object's ID is its place in the image's object list); objects itself when none is removed.
func withoutRemoved(objects []imgfmt.Object, removed map[int]bool) []imgfmt.Object {
	if len(removed) == 0 {
		return objects
	}
	out := objects[:0:0]
	for i := range objects {
		if !removed[i] {
			o := objects[i]
			o.ID = uint32(len(out) + 1)
			out = append(out, o)
		}
	}
	return out
}

// withoutJoined returns order without the keys in joined (clients' groups merged into their
// listener's); order itself when none is.
func withoutJoined(order []uint64, joined map[uint64]bool) []uint64 {
	if len(joined) == 0 {
		return order
	}
	var out []uint64
	for _, key := range order {
		if !joined[key] {
			out = append(out, key)
		}
	}
	return out
}
