package ckpt

import (
	"testing"

	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/context"
	"gvisor.dev/gvisor/pkg/sentry/socket/control"
	"gvisor.dev/gvisor/pkg/sentry/socket/unix/transport"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// These tests run the unexported-state walk of obj_unix_state.go on real transport endpoints: a
// gVisor bump that renames, retypes or restructures a field the walk reads fails them (the route is
// recorded in docs/upstream-gaps.md).

type testUIDs struct{ n uint64 }

func (u *testUIDs) UniqueID() uint64 { u.n++; return u.n }

type testCreds struct{}

func (testCreds) Equals(transport.CredentialsControlMessage) bool { return true }

func send(t *testing.T, ep transport.Endpoint, data string, c transport.ControlMessages) {
	t.Helper()
	if n, _, err := ep.SendMsg(context.Background(), [][]byte{[]byte(data)}, c, nil); err != nil || n != int64(len(data)) {
		t.Fatalf("SendMsg(%q) = %d, %v", data, n, err)
	}
}

func walk(t *testing.T, ep transport.Endpoint) *unixEndpointState {
	t.Helper()
	st, err := readUnixEndpoint(ep, nil)
	if err != nil {
		t.Fatalf("readUnixEndpoint: %v", err)
	}
	return st
}

func queueOf(st *unixEndpointState) []string {
	var q []string
	for _, m := range st.queue {
		q = append(q, string(m.Data))
	}
	return q
}

func TestUnixStateWalkSeqpacket(t *testing.T) {
	ctx := context.Background()
	a, b := transport.NewPair(ctx, linux.SOCK_SEQPACKET, &testUIDs{})
	send(t, a, "one", transport.ControlMessages{Credentials: testCreds{}})
	send(t, a, "", transport.ControlMessages{})
	rights := control.RightsFiles{nil, nil}
	send(t, a, "three", transport.ControlMessages{Rights: &rights})
	send(t, b, "back", transport.ControlMessages{})
	sa, sb := walk(t, a), walk(t, b)
	if got := queueOf(sb); len(got) != 3 || got[0] != "one" || got[1] != "" || got[2] != "three" {
		t.Errorf("b's queue %q, want one, \"\", three", got)
	}
	if !sb.queue[0].Creds || sb.queue[1].Creds || sb.queue[2].Rights != 2 || sb.queue[0].Rights != 0 {
		t.Errorf("control markers %+v", sb.queue)
	}
	if got := queueOf(sa); len(got) != 1 || got[0] != "back" {
		t.Errorf("a's queue %q, want back", got)
	}
	if sa.recvQueue == nil || sa.recvQueue != sb.sendQueue || sb.recvQueue != sa.sendQueue || sa.recvQueue == sb.recvQueue {
		t.Errorf("queue links a %p/%p b %p/%p", sa.recvQueue, sa.sendQueue, sb.recvQueue, sb.sendQueue)
	}
	if unixConnID(sa.recvQueue, sa.sendQueue) != unixConnID(sb.recvQueue, sb.sendQueue) {
		t.Error("the two ends compute different connection identities")
	}
	if sa.host || sa.listening || sa.recvClosed || sa.sendClosed || sa.sendShutdown || sa.reset {
		t.Errorf("fresh end state %+v", sa)
	}
	// The walk must not consume: a real receive still gets the first message.
	buf := make([]byte, 8)
	if out, _, err := b.RecvMsg(ctx, [][]byte{buf}, transport.RecvArgs{}); err != nil || string(buf[:out.RecvLen]) != "one" {
		t.Errorf("RecvMsg after the walk: %q, %v", buf[:out.RecvLen], err)
	}
	a.Shutdown(tcpip.ShutdownWrite)
	sa, sb = walk(t, a), walk(t, b)
	if !sa.sendShutdown || !sa.sendClosed || !sb.recvClosed || sb.sendClosed || sa.recvClosed {
		t.Errorf("after a SHUT_WR: a %+v b %+v", sa, sb)
	}
}

func TestUnixStateWalkStream(t *testing.T) {
	ctx := context.Background()
	a, b := transport.NewPair(ctx, linux.SOCK_STREAM, &testUIDs{})
	send(t, a, "abc", transport.ControlMessages{})
	send(t, a, "def", transport.ControlMessages{})
	buf := make([]byte, 2)
	if _, _, err := b.RecvMsg(ctx, [][]byte{buf}, transport.RecvArgs{}); err != nil {
		t.Fatalf("RecvMsg: %v", err)
	}
	// "c" is left in the stream receiver's buffer, "def" in the queue.
	if got := queueOf(walk(t, b)); len(got) != 2 || got[0] != "c" || got[1] != "def" {
		t.Errorf("b's queue %q, want c, def", got)
	}
	// b closes with unread data its peer sent: a's queue is closed and reports a reset.
	send(t, a, "x", transport.ControlMessages{})
	b.Close(ctx)
	sa := walk(t, a)
	if !sa.recvClosed || !sa.reset || !sa.sendClosed {
		t.Errorf("after the peer closed with unread data: %+v", sa)
	}
}

func TestUnixStateWalkListenAndDgram(t *testing.T) {
	ctx := context.Background()
	l := transport.NewConnectioned(ctx, linux.SOCK_STREAM, &testUIDs{})
	if err := l.Bind(transport.Address{Addr: "/l"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Listen(ctx, 6); err != nil {
		t.Fatal(err)
	}
	if st := walk(t, l); !st.listening || st.backlog != 6 || st.pending != 0 || st.recvQueue != nil || st.sendQueue != nil {
		t.Errorf("listener %+v", st)
	}
	d := transport.NewConnectionless(ctx)
	snd, err := d.(transport.BoundEndpoint).UnidirectionalConnect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer snd.Release(ctx)
	for _, from := range []string{"/a", "\x00b", ""} {
		if _, _, err := snd.Send(ctx, [][]byte{[]byte("m" + from)}, transport.ControlMessages{}, transport.Address{Addr: from}); err != nil {
			t.Fatal(err)
		}
	}
	st := walk(t, d)
	if len(st.queue) != 3 || st.queue[0].From != "/a" || st.queue[1].From != "\x00b" || st.queue[2].From != "" || string(st.queue[2].Data) != "m" {
		t.Errorf("datagram queue %+v", st.queue)
	}
	if st.listening || st.sendQueue != nil || st.recvQueue == nil {
		t.Errorf("datagram socket %+v", st)
	}
}
