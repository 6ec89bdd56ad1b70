package imgfmt

import (
	"strings"
	"testing"
)

// tcpAcceptProcess returns a process with one object: a TCP listener on 127.0.0.1:8080 (fd 5)
// with two connections in its accept queue, the second from its client at fd 6.
func tcpAcceptProcess() *Process {
	p := minimalProcess()
	for fd := int32(5); fd <= 6; fd++ {
		p.Files = append(p.Files, File{FD: fd, Kind: FileSocket, StatusFlags: 2, Offset: -1, Desc: "socket:[1]"})
	}
	lo4 := []byte{127, 0, 0, 1}
	l := InetAddr{Port: 8080, Addr: lo4}
	p.Objects = []Object{{ID: 1, Key: 1, FDs: []ObjectFD{{FD: 5}, {FD: 6, Desc: 1}}, Body: &InetSocketObject{Ends: []InetEnd{
		{Family: afInet, Type: sockStream, State: InetListening, Backlog: 4, Local: l, HasAcceptQueue: true, AcceptQueue: []InetPendingConn{
			{Local: l, Remote: InetAddr{Port: 40000, Addr: lo4}, Data: []byte("outside")},
			{Local: l, Remote: InetAddr{Port: 40001, Addr: lo4}, Data: []byte("hello")},
		}},
		{Family: afInet, Type: sockStream, State: InetConnected, Local: InetAddr{Port: 40001, Addr: lo4}, Remote: l, QueuedClient: true, Pending: 1},
	}}}}
	return p
}

func TestInetAcceptQueueRoundTrip(t *testing.T) {
	p := tcpAcceptProcess()
	q, img := objectRoundTrip(t, p)
	if got := imageMinor(q); got != minorTCPAcceptQueue {
		t.Errorf("format revision %d, want %d", got, minorTCPAcceptQueue)
	}
	if !strings.Contains(string(img), "hello") || !strings.Contains(string(img), "outside") {
		t.Error("the image lacks the queued bytes")
	}
	s := viewOf(q)
	if d := s.Objects[0].Detail; !strings.Contains(d, "backlog 4, accept queue: 2 connections (12 bytes sent by their clients)") ||
		!strings.Contains(d, "tcp connected 127.0.0.1:40001 -> 127.0.0.1:8080, client 1 of the accept queue") {
		t.Errorf("inspect detail %q", d)
	}
	// Without a TCP accept queue an image stays at the older revision.
	if got := imageMinor(inetProcess()); got >= minorTCPAcceptQueue {
		t.Errorf("an image without TCP accept queues is revision %d", got)
	}
}

func TestInetAcceptQueueChecks(t *testing.T) {
	body := func(p *Process) *InetSocketObject { return p.Objects[0].Body.(*InetSocketObject) }
	for _, tc := range []struct {
		name, want string
		mod        func(p *Process)
	}{
		{"backlog", "pending connections for a backlog of 0", func(p *Process) { body(p).Ends[0].Backlog = 0 }},
		{"entry family", "addresses do not match the family", func(p *Process) { body(p).Ends[0].AcceptQueue[0].Remote.Addr = make([]byte, 16) }},
		{"flag on client", "accept queue on an end that is not a listening", func(p *Process) { body(p).Ends[1].HasAcceptQueue = true }},
		{"clients without flag", "queued clients without a listening end that has", func(p *Process) { body(p).Ends[0].HasAcceptQueue = false }},
		{"entries without flag", "entries without the accept queue flag", func(p *Process) {
			body(p).Ends = body(p).Ends[:1]
			body(p).Ends[0].HasAcceptQueue = false
			p.Objects[0].FDs = p.Objects[0].FDs[:1]
			p.Files = p.Files[:len(p.Files)-1]
		}},
		{"index range", "index 2 (of 2)", func(p *Process) { body(p).Ends[1].Pending = 2 }},
		{"client state", "a client of an accept queue is a connected TCP end", func(p *Process) { body(p).Ends[1].State = InetReset }},
		{"other end", "neither the listener", func(p *Process) {
			b := body(p)
			b.Ends = append(b.Ends, b.Ends[1])
			b.Ends[2].QueuedClient, b.Ends[2].Pending = false, 0
			p.Objects[0].FDs = append(p.Objects[0].FDs, ObjectFD{FD: 7, Desc: 2})
			p.Files = append(p.Files, File{FD: 7, Kind: FileSocket, StatusFlags: 2, Offset: -1, Desc: "socket:[1]"})
		}},
		{"index twice", "taken or out of range", func(p *Process) {
			b := body(p)
			b.Ends = append(b.Ends, b.Ends[1])
			p.Objects[0].FDs = append(p.Objects[0].FDs, ObjectFD{FD: 7, Desc: 2})
			p.Files = append(p.Files, File{FD: 7, Kind: FileSocket, StatusFlags: 2, Offset: -1, Desc: "socket:[1]"})
		}},
		{"no listener", "without a listening end", func(p *Process) {
			body(p).Ends[0].State = InetBound
			body(p).Ends[0].Backlog = 0
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tcpAcceptProcess()
			tc.mod(p)
			wantEncodeError(t, p, tc.want)
		})
	}
}

// TestInetAcceptQueueDecodeErrors patches the accept queue's count, reserved fields and the
// client's index.
func TestInetAcceptQueueDecodeErrors(t *testing.T) {
	p := tcpAcceptProcess()
	img := encodeToBytes(t, p)
	at := lastOwnNoteDesc(img)
	// The listener's accept queue follows its fixed part, addresses, empty option list, data
	// length and datagram count.
	q := at + objectFixedSize + 2*objectFDSize + 8 + 12 + 2*inetAddrLen + 4 + 4 + 4
	e0 := inetPendingFixedSize + len("outside")
	client := q + 8 + e0 + inetPendingFixedSize + len("hello") + 12 + 2*inetAddrLen + 4 + 4 + 4
	for _, tc := range []struct {
		name string
		off  int
		val  byte
		want string
	}{
		{"entries", q + 3, 0x7f, "accept queue entries do not fit"},
		{"reserved", q + 4, 1, "inet accept queue reserved"},
		{"entry data", q + 8 + 2*inetAddrLen + 3, 0x7f, "accept queue data"},
		{"client index", client, 7, "taken or out of range"},
		{"client reserved", client + 4, 1, "inet queued client reserved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantByteDecodeError(t, img, tc.off, tc.val, tc.want)
		})
	}
}

// FuzzDecodeInetAccept is FuzzDecode seeded with a TCP listener and its accept queue.
func FuzzDecodeInetAccept(f *testing.F) {
	f.Add(encodeToBytes(f, tcpAcceptProcess()))
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeCanonical(t, data)
	})
}
