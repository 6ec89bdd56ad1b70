package ckpt

import (
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
)

// TestTCPAcceptListRoute fails when a gVisor bump renames or retypes what tcpAcceptQueue reads: a
// listener's accept queue (acceptQueue.endpoints, a container/list) and its mutex acceptMu.
func TestTCPAcceptListRoute(t *testing.T) {
	q, err := tcpAcceptQueue(new(tcp.Endpoint))
	if err != nil || len(q) != 0 {
		t.Fatalf("tcpAcceptQueue of a fresh endpoint: %v, %v", q, err)
	}
}

// TestJoinTCPQueuedClients: a reset client whose addresses are an accept queue entry's, swapped,
// joins the listener's object as a queued client; another reset socket stays its own object.
func TestJoinTCPQueuedClients(t *testing.T) {
	lo := []byte{127, 0, 0, 1}
	mapped := []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1}
	l := imgfmt.InetAddr{Port: 80, Addr: lo}
	objs := []imgfmt.Object{
		{ID: 1, Key: 11, FDs: []imgfmt.ObjectFD{{FD: 3}}, Body: &imgfmt.InetSocketObject{Ends: []imgfmt.InetEnd{{
			Family: 10, Type: 1, State: imgfmt.InetListening, Backlog: 4, Local: imgfmt.InetAddr{Port: 80, Addr: make([]byte, 16)}, HasAcceptQueue: true,
			AcceptQueue: []imgfmt.InetPendingConn{
				{Local: imgfmt.InetAddr{Port: 80, Addr: mapped}, Remote: imgfmt.InetAddr{Port: 5000, Addr: mapped}},
				{Local: imgfmt.InetAddr{Port: 80, Addr: mapped}, Remote: imgfmt.InetAddr{Port: 5001, Addr: mapped}, Data: []byte("x")},
			}}}}},
		{ID: 2, Key: 12, FDs: []imgfmt.ObjectFD{{FD: 4}}, Body: &imgfmt.InetSocketObject{Ends: []imgfmt.InetEnd{{
			Family: 2, Type: 1, State: imgfmt.InetReset, Local: imgfmt.InetAddr{Port: 5001, Addr: lo}, Remote: l}}}},
		{ID: 3, Key: 13, FDs: []imgfmt.ObjectFD{{FD: 5}}, Body: &imgfmt.InetSocketObject{Ends: []imgfmt.InetEnd{{
			Family: 2, Type: 1, State: imgfmt.InetReset, Local: imgfmt.InetAddr{Port: 6000, Addr: lo}, Remote: l}}}},
	}
	out := joinTCPQueuedClients(objs)
	if len(out) != 2 || out[1].Key != 13 || out[1].ID != 2 {
		t.Fatalf("objects after the join: %+v", out)
	}
	b := out[0].Body.(*imgfmt.InetSocketObject)
	if len(b.Ends) != 2 || !b.Ends[1].QueuedClient || b.Ends[1].Pending != 1 || b.Ends[1].State != imgfmt.InetConnected {
		t.Fatalf("listener ends: %+v", b.Ends)
	}
	if len(out[0].FDs) != 2 || out[0].FDs[1] != (imgfmt.ObjectFD{FD: 4, Desc: 1}) {
		t.Errorf("listener fds: %+v", out[0].FDs)
	}
}

// TestJoinTCPAcceptQueuesTree: a reset client of another process whose connection waits in a
// listener's accept queue joins the listener's group and becomes a queued client in the merged
// body; a reset socket of no accept queue stays alone.
func TestJoinTCPAcceptQueuesTree(t *testing.T) {
	lo := []byte{127, 0, 0, 1}
	l := imgfmt.InetAddr{Port: 80, Addr: lo}
	listener := &imgfmt.Object{ID: 1, Key: 1, FDs: []imgfmt.ObjectFD{{FD: 3}}, Body: &imgfmt.InetSocketObject{Ends: []imgfmt.InetEnd{{
		Family: 2, Type: 1, State: imgfmt.InetListening, Backlog: 4, Local: l, HasAcceptQueue: true,
		AcceptQueue: []imgfmt.InetPendingConn{{Local: l, Remote: imgfmt.InetAddr{Port: 5000, Addr: lo}, Data: []byte("hi")}}}}}}
	client := &imgfmt.Object{ID: 1, Key: 2, FDs: []imgfmt.ObjectFD{{FD: 3}}, Body: &imgfmt.InetSocketObject{Ends: []imgfmt.InetEnd{{
		Family: 2, Type: 1, State: imgfmt.InetReset, Local: imgfmt.InetAddr{Port: 5000, Addr: lo}, Remote: l}}}}
	other := &imgfmt.Object{ID: 2, Key: 3, FDs: []imgfmt.ObjectFD{{FD: 4}}, Body: &imgfmt.InetSocketObject{Ends: []imgfmt.InetEnd{{
		Family: 2, Type: 1, State: imgfmt.InetReset, Local: imgfmt.InetAddr{Port: 5001, Addr: lo}, Remote: l}}}}
	groups := map[uint64][]objectMember{1: {{pid: 1, obj: listener}}, 2: {{pid: 2, obj: client}}, 3: {{pid: 2, obj: other}}}
	order := joinTCPAcceptQueues(groups, []uint64{1, 2, 3})
	if len(order) != 2 || order[0] != 1 || order[1] != 3 || len(groups[1]) != 2 {
		t.Fatalf("order %v, groups %+v", order, groups)
	}
	body, err := mergeInetBody(groups[1], []descRef{{0, 0}, {1, 0}})
	if err != nil {
		t.Fatal(err)
	}
	b := body.(*imgfmt.InetSocketObject)
	if len(b.Ends) != 2 || !b.Ends[1].QueuedClient || b.Ends[1].Pending != 0 || b.Ends[1].State != imgfmt.InetConnected || b.Ends[0].State != imgfmt.InetListening {
		t.Errorf("merged body: %+v", b.Ends)
	}
	// A socket joined to a listener that does not queue it is an invalid image.
	groups[1] = append(groups[1], objectMember{pid: 2, obj: other})
	if _, err := mergeInetBody(groups[1], []descRef{{0, 0}, {1, 0}, {2, 0}}); err == nil {
		t.Error("a socket of no accept queue merged into the listener")
	}
}
