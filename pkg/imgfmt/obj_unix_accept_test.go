package imgfmt

import (
	"strings"
	"testing"
)

// acceptProcess returns a process with a listening stream socket on fd 5 whose accept queue holds
// three connections: the first and third have their clients on fds 6 and 7 (ends of the
// listener's object), the second's client is outside the image.
func acceptProcess() *Process {
	p := minimalProcess()
	for _, fd := range []int32{5, 6, 7} {
		p.Files = append(p.Files, File{FD: fd, Kind: FileSocket, StatusFlags: 2, Offset: -1, Desc: "socket:[1]"})
	}
	p.Objects = []Object{{ID: 1, Key: 0x11, FDs: []ObjectFD{{FD: 5, Desc: 0}, {FD: 6, Desc: 1}, {FD: 7, Desc: 2}},
		Body: &UnixSocketObject{Type: sockStream, Ends: []UnixSocketEnd{
			{Flags: UnixListening | UnixAcceptQueue, Backlog: 4, Pending: 3, Addr: "/tmp/l", AcceptQueue: []UnixPendingConn{
				{Key: 0x21, Queue: []UnixMessage{{Data: []byte("hello")}, {Data: []byte("!")}}},
				{Key: 0x22, Queue: []UnixMessage{{Data: []byte("lost")}}},
				{Key: 0x23},
			}},
			{Flags: UnixConnected | UnixQueuedClient, Pending: 2, Peer: "/tmp/l"},
			{Flags: UnixConnected | UnixQueuedClient | UnixSendShutdown, Pending: 0, Peer: "/tmp/l"},
		}}}}
	return p
}

func TestUnixAcceptQueueRoundTrip(t *testing.T) {
	p := acceptProcess()
	q, img := objectRoundTrip(t, p)
	if got := imageMinor(q); got != minorAcceptQueue {
		t.Errorf("format revision %d, want %d", got, minorAcceptQueue)
	}
	if !strings.Contains(string(img), "hello") {
		t.Error("the image lacks the queued bytes")
	}
	s := viewOf(q)
	if d := s.Objects[0].Detail; !strings.Contains(d, "accept queue: 3 connections (3 messages 10 bytes sent by their clients)") ||
		!strings.Contains(d, `client 2 of the accept queue, connected to "/tmp/l"`) {
		t.Errorf("inspect detail %q", d)
	}
	// Without an accept queue an image stays at the older revision.
	p = unixProcess()
	if got := imageMinor(p); got >= minorAcceptQueue {
		t.Errorf("an image without accept queues is revision %d", got)
	}
}

func TestUnixAcceptQueueChecks(t *testing.T) {
	body := func(p *Process) *UnixSocketObject { return p.Objects[0].Body.(*UnixSocketObject) }
	for _, tc := range []struct {
		name, want string
		mod        func(p *Process)
	}{
		{"count", "3 accept queue entries for 2 pending", func(p *Process) { body(p).Ends[0].Pending = 2 }},
		{"backlog", "pending connections for a backlog of 1", func(p *Process) { body(p).Ends[0].Backlog = 1 }},
		{"key", "without a key", func(p *Process) { body(p).Ends[0].AcceptQueue[1].Key = 0 }},
		{"message", "message source", func(p *Process) { body(p).Ends[0].AcceptQueue[0].Queue[0].From = strings.Repeat("a", 200) }},
		{"flag without listener", "accept queue on a socket that is not listening", func(p *Process) {
			body(p).Ends[1].Flags |= UnixAcceptQueue
		}},
		{"entries without flag", "without the accept-queue flag", func(p *Process) { body(p).Ends[0].Flags &^= UnixAcceptQueue }},
		{"index range", "index 3 (of 3)", func(p *Process) { body(p).Ends[1].Pending = 3 }},
		{"index twice", "taken or out of range", func(p *Process) { body(p).Ends[1].Pending = 0 }},
		{"client queue", "a queued client must be", func(p *Process) { body(p).Ends[1].Queue = []UnixMessage{{Data: []byte("x")}} }},
		{"client host", "a queued client must be", func(p *Process) { body(p).Ends[1].Flags |= UnixHost }},
		{"no listener", "without a listening end", func(p *Process) {
			p.Objects[0].FDs = p.Objects[0].FDs[1:2]
			p.Objects[0].FDs[0].Desc = 0
			body(p).Ends = body(p).Ends[1:2]
		}},
		{"other end", "neither the listener", func(p *Process) { body(p).Ends[2].Flags &^= UnixQueuedClient }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := acceptProcess()
			tc.mod(p)
			wantEncodeError(t, p, tc.want)
		})
	}
}

// TestUnixAcceptQueueDecodeErrors patches the accept queue's counts and reserved fields.
func TestUnixAcceptQueueDecodeErrors(t *testing.T) {
	p := acceptProcess()
	img := encodeToBytes(t, p)
	at := lastOwnNoteDesc(img)
	l := p.Objects[0].Body.(*UnixSocketObject).Ends[0]
	// The listener's accept queue follows its fixed part, options and address (no messages).
	q := at + objectFixedSize + 3*objectFDSize + 8 + unixEndFixedSize + sockOptionsSize(l.Options) + len(l.Addr)
	for _, tc := range []struct {
		name string
		off  int
		val  byte
		want string
	}{
		{"entries", q + 3, 0x7f, "accept queue entries do not fit"},
		{"reserved", q + 4, 1, "accept queue reserved field"},
		{"entry reserved", q + 8 + 8, 1, "entry 0: reserved field"},
		{"entry messages", q + 8 + 15, 0x7f, "messages do not fit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantByteDecodeError(t, img, tc.off, tc.val, tc.want)
		})
	}
}
