package ckpt

import (
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/context"
	"gvisor.dev/gvisor/pkg/sentry/socket/unix/transport"
)

// TestUnixAcceptQueueWalk reads the accept queue of a real listening transport endpoint with
// three connections: the entries come in connect order, with the bytes each client sent and the
// key its client's own object gets, and the queue is left as it was (accept returns the same
// endpoints in the same order). A gVisor bump that changes acceptedChan fails it.
func TestUnixAcceptQueueWalk(t *testing.T) {
	ctx := context.Background()
	uids := &testUIDs{}
	l := transport.NewConnectioned(ctx, linux.SOCK_STREAM, uids)
	if err := l.Bind(transport.Address{Addr: "\x00listener"}); err != nil {
		t.Fatalf("Bind: %v", err)
	}
	if err := l.Listen(ctx, 4); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	var clients []transport.Endpoint
	for i, data := range []string{"first", "", "third"} {
		c := transport.NewConnectioned(ctx, linux.SOCK_STREAM, uids)
		if err := c.Connect(ctx, l.(transport.BoundEndpoint)); err != nil {
			t.Fatalf("Connect %d: %v", i, err)
		}
		if data != "" {
			send(t, c, data, transport.ControlMessages{})
		}
		clients = append(clients, c)
	}
	q, err := readAcceptQueue(l, nil)
	if err != nil {
		t.Fatalf("readAcceptQueue: %v", err)
	}
	if len(q) != 3 {
		t.Fatalf("%d entries, want 3: %+v", len(q), q)
	}
	for i, want := range []string{"first", "", "third"} {
		st := walk(t, clients[i])
		if key := objectKey(unixConnID(st.recvQueue, st.sendQueue)); q[i].Key != key {
			t.Errorf("entry %d: key %#x, the client's object key is %#x", i, q[i].Key, key)
		}
		if got := joinData(q[i].Queue); got != want {
			t.Errorf("entry %d: queue %q, want %q", i, got, want)
		}
	}
	// The queue is intact: accept returns the same connections in order, and again the walk
	// finds nothing once they are accepted.
	for i := range 3 {
		ne, err := l.Accept(ctx, nil)
		if err != nil {
			t.Fatalf("Accept %d: %v", i, err)
		}
		st := walk(t, ne)
		if key := objectKey(unixConnID(st.recvQueue, st.sendQueue)); key != q[i].Key {
			t.Errorf("accept %d returned another connection (key %#x, want %#x)", i, key, q[i].Key)
		}
	}
	if q, err := readAcceptQueue(l, nil); err != nil || len(q) != 0 {
		t.Errorf("after accepting all: %+v, %v", q, err)
	}
	// A socket that is not listening has no accept queue.
	if q, err := readAcceptQueue(clients[0], nil); err != nil || len(q) != 0 {
		t.Errorf("a client's accept queue: %+v, %v", q, err)
	}
}

// TestJoinQueuedClients: a client object whose key is in a listener's accept queue becomes an end
// of the listener's object (with its fds as a new description), the objects are numbered again,
// and a client whose listener is elsewhere is left alone.
func TestJoinQueuedClients(t *testing.T) {
	client := func(key uint64, fd int32) imgfmt.Object {
		return imgfmt.Object{Key: key, FDs: []imgfmt.ObjectFD{{FD: fd}}, Body: &imgfmt.UnixSocketObject{Type: 1,
			Ends: []imgfmt.UnixSocketEnd{{Flags: imgfmt.UnixConnected, Peer: "\x00l"}}}}
	}
	objs := []imgfmt.Object{
		client(0x21, 3),
		{Key: 0x11, FDs: []imgfmt.ObjectFD{{FD: 5}}, Body: &imgfmt.UnixSocketObject{Type: 1, Ends: []imgfmt.UnixSocketEnd{{
			Flags: imgfmt.UnixListening | imgfmt.UnixAcceptQueue, Backlog: 3, Pending: 3, Addr: "\x00l",
			AcceptQueue: []imgfmt.UnixPendingConn{{Key: 0x21}, {Key: 0x99}, {Key: 0x23}}}}}},
		client(0x23, 7),
		client(0x77, 8),
	}
	for i := range objs {
		objs[i].ID = uint32(i + 1)
	}
	out := joinQueuedClients(objs)
	if len(out) != 2 || out[0].ID != 1 || out[1].ID != 2 || out[1].Key != 0x77 {
		t.Fatalf("objects %+v", out)
	}
	b := out[0].Body.(*imgfmt.UnixSocketObject)
	if len(b.Ends) != 3 || b.Ends[1].Flags&imgfmt.UnixQueuedClient == 0 || b.Ends[1].Pending != 0 || b.Ends[2].Pending != 2 {
		t.Errorf("listener ends %+v", b.Ends)
	}
	want := []imgfmt.ObjectFD{{FD: 3, Desc: 1}, {FD: 5, Desc: 0}, {FD: 7, Desc: 2}}
	if len(out[0].FDs) != 3 || out[0].FDs[0] != want[0] || out[0].FDs[1] != want[1] || out[0].FDs[2] != want[2] {
		t.Errorf("listener fds %+v, want %+v", out[0].FDs, want)
	}
	// A listener only at fds 0-2 (not rebuilt by a thaw) keeps no clients.
	objs = []imgfmt.Object{client(0x21, 3), {ID: 2, Key: 0x11, FDs: []imgfmt.ObjectFD{{FD: 0}}, Body: &imgfmt.UnixSocketObject{Type: 1, Ends: []imgfmt.UnixSocketEnd{{
		Flags: imgfmt.UnixListening | imgfmt.UnixAcceptQueue, Backlog: 3, Pending: 1, Addr: "\x00l",
		AcceptQueue: []imgfmt.UnixPendingConn{{Key: 0x21}}}}}}}
	objs[0].ID = 1
	if out := joinQueuedClients(objs); len(out) != 2 || len(out[1].Body.(*imgfmt.UnixSocketObject).Ends) != 1 {
		t.Errorf("a stdio listener took its clients: %+v", out)
	}
}

func joinData(msgs []imgfmt.UnixMessage) string {
	var s string
	for _, m := range msgs {
		s += string(m.Data)
	}
	return s
}
