package imgfmt

import (
	"strings"
	"testing"
)

// unixProcess returns a process with a stream socketpair on fds 5 and 6 (both ends, data queued
// both ways) and a listening abstract seqpacket socket on fd 7.
func unixProcess() *Process {
	p := minimalProcess()
	for _, fd := range []int32{5, 6, 7} {
		p.Files = append(p.Files, File{FD: fd, Kind: FileSocket, StatusFlags: 2, Offset: -1, Desc: "socket:[1]"})
	}
	opts := (&legacyUnixOptions{Flags: legacyPassCred | legacyLinger, LingerSeconds: 3, SendBuffer: 8192, RecvBuffer: 4096, RecvTimeout: 1500000000}).list()
	p.Objects = []Object{
		{ID: 1, Key: 0x11, FDs: []ObjectFD{{FD: 5, Desc: 0}, {FD: 6, Desc: 1}}, Body: &UnixSocketObject{Type: sockStream, Ends: []UnixSocketEnd{
			{Flags: UnixConnected, Options: opts, Queue: []UnixMessage{{Data: []byte("hello"), Creds: true}, {Data: []byte("x"), Rights: 2, Files: []UnixRightsFile{
				{Kind: FileRegular, StatusFlags: 2, Offset: 5, Handle: &FileHandle{Path: "/etc/passwd", Mode: 0o100644, Ino: 3, Size: 9}}}}}},
			{Flags: UnixConnected | UnixRecvClosed | UnixSendShutdown, Addr: "/tmp/s", Peer: "", Queue: []UnixMessage{{Data: []byte{}, From: "/tmp/s"}}},
		}}},
		{ID: 2, Key: 0x22, FDs: []ObjectFD{{FD: 7}}, Body: &UnixSocketObject{Type: sockSeqpacket, Ends: []UnixSocketEnd{
			{Flags: UnixListening, Backlog: 17, Pending: 1, Addr: "\x00abstract\x00name"},
		}}},
	}
	return p
}

func TestUnixSocketRoundTrip(t *testing.T) {
	p := unixProcess()
	q, _ := objectRoundTrip(t, p)
	s := viewOf(q)
	if len(s.Objects) != 2 || s.Objects[0].Kind != "unix-socket" || !strings.Contains(s.Objects[1].Detail, "listening backlog 17") ||
		!strings.Contains(s.Objects[0].Detail, "2 fds in flight (1 reopened, 1 dropped)") {
		t.Errorf("summary objects %+v", s.Objects)
	}
}

func TestUnixSocketAddDescription(t *testing.T) {
	a := &UnixSocketObject{Type: sockStream, Ends: []UnixSocketEnd{{Flags: UnixConnected}}}
	if err := a.AddDescription(&UnixSocketObject{Type: sockStream, Ends: []UnixSocketEnd{{Flags: UnixConnected, Addr: "b"}}}); err != nil || len(a.Ends) != 2 || a.Ends[1].Addr != "b" {
		t.Errorf("AddDescription: %v, ends %+v", err, a.Ends)
	}
	if err := a.AddDescription(&UnixSocketObject{Type: sockDgram, Ends: []UnixSocketEnd{{}}}); err == nil {
		t.Error("AddDescription of another type succeeded")
	}
	if err := a.AddDescription(&EventFDObject{}); err == nil {
		t.Error("AddDescription of an eventfd succeeded")
	}
}

func TestUnixSocketChecks(t *testing.T) {
	end0 := func(p *Process) *UnixSocketEnd { return &p.Objects[0].Body.(*UnixSocketObject).Ends[0] }
	lst := func(p *Process) *UnixSocketEnd { return &p.Objects[1].Body.(*UnixSocketObject).Ends[0] }
	for _, tc := range []struct {
		name, want string
		mod        func(p *Process)
	}{
		{"type", "socket type 3", func(p *Process) { p.Objects[0].Body.(*UnixSocketObject).Type = 3 }},
		{"ends vs descs", "2 ends for 1 open file descriptions", func(p *Process) { p.Objects[0].FDs[1].Desc = 0 }},
		{"unknown flags", "unknown flags", func(p *Process) { end0(p).Flags |= 1 << 20 }},
		{"pair not connected", "both ends of a connection", func(p *Process) { end0(p).Flags = 0; end0(p).Queue = nil }},
		{"listen dgram", "listening socket", func(p *Process) { p.Objects[1].Body.(*UnixSocketObject).Type = sockDgram }},
		{"listen unbound", "listening socket", func(p *Process) { lst(p).Addr = "" }},
		{"backlog", "backlog on a socket that is not listening", func(p *Process) { lst(p).Flags = 0 }},
		{"huge backlog", "exceeds", func(p *Process) { lst(p).Backlog = 1 << 30 }},
		{"connless stream", "must be SOCK_DGRAM", func(p *Process) { lst(p).Flags = UnixConnectionless; lst(p).Backlog, lst(p).Pending = 0, 0 }},
		{"long addr", "address of 109 bytes", func(p *Process) { lst(p).Addr = strings.Repeat("a", 109) }},
		{"nul path", "contains a NUL", func(p *Process) { lst(p).Addr = "/a\x00b" }},
		{"option level", "socket option of level 6", func(p *Process) { end0(p).Options[0].Level = 6 }},
		{"option twice", "recorded twice", func(p *Process) { end0(p).Options = append(end0(p).Options, end0(p).Options[0]) }},
		{"option length", "value too long", func(p *Process) { end0(p).Options[0].Value = make([]byte, MaxSockOptLen+1) }},
		{"rights", "fds in flight", func(p *Process) { end0(p).Queue[1].Rights = 1000 }},
		{"more files than rights", "2 files for 1 fds", func(p *Process) {
			end0(p).Queue[1].Rights = 1
			end0(p).Queue[1].Files = append(end0(p).Queue[1].Files, end0(p).Queue[1].Files[0])
		}},
		{"file kind", "cannot be reopened", func(p *Process) { end0(p).Queue[1].Files[0].Kind = FileSocket }},
		{"file handle", "without a handle", func(p *Process) { end0(p).Queue[1].Files[0].Handle = nil }},
		{"file path", "empty path", func(p *Process) { end0(p).Queue[1].Files[0].Handle.Path = "" }},
		{"queue unconnected", "queued data on an unconnected", func(p *Process) {
			lst(p).Flags, lst(p).Backlog, lst(p).Pending = 0, 0, 0
			lst(p).Queue = []UnixMessage{{Data: []byte("x")}}
		}},
		{"host queue", "host-backed", func(p *Process) {
			p.Objects[0].FDs = p.Objects[0].FDs[:1]
			b := p.Objects[0].Body.(*UnixSocketObject)
			b.Ends = b.Ends[:1]
			b.Ends[0].Flags |= UnixHost
		}},
		{"fd kind", "fd is not a socket", func(p *Process) { p.Files[len(p.Files)-1].Kind = FileFIFO }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := unixProcess()
			tc.mod(p)
			wantEncodeError(t, p, tc.want)
		})
	}
}

// TestUnixSocketDecodeErrors patches the encoded body of the listening socket (the last object
// note): counts and lengths that do not fit, unknown flags and reserved bytes are format errors.
func TestUnixSocketDecodeErrors(t *testing.T) {
	img := encodeToBytes(t, unixProcess())
	at := lastOwnNoteDesc(img)
	body := at + objectFixedSize + objectFDSize // the listening socket has one fd
	end := body + 8
	for _, tc := range []struct {
		name string
		off  int
		val  byte
		want string
	}{
		{"no ends", body + 4, 0, "0 ends"},
		{"three ends", body + 4, 3, "3 ends"},
		{"messages", end + 12, 0xff, "messages do not fit"},
		{"addr length", end + 16, 200, "address length"},
		{"unknown flags", end + 1, 0x09, "unknown flags"},
		{"sockopt count", end + 24, 0xff, "socket options do not fit"},
		{"truncated addr", end + 16, 100, "too short"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantByteDecodeError(t, img, tc.off, tc.val, tc.want)
		})
	}
}

// TestUnixMessageDecodeErrors patches the first message of the socketpair's first end.
func TestUnixMessageDecodeErrors(t *testing.T) {
	p := unixProcess()
	p.Objects = p.Objects[:1]
	img := encodeToBytes(t, p)
	at := lastOwnNoteDesc(img)
	// End 0 has no addresses, and its options before the messages.
	msg := at + objectFixedSize + 2*objectFDSize + 8 + unixEndFixedSize + sockOptionsSize(p.Objects[0].Body.(*UnixSocketObject).Ends[0].Options)
	for _, tc := range []struct {
		name string
		off  int
		val  byte
		want string
	}{
		{"data length", msg + 3, 0x7f, "exceeds"},
		{"from length", msg + 4, 200, "source address length"},
		{"flags", msg + 8, 2, "unknown message flags"},
		{"data short", msg + 1, 1, "too short"},
		{"files", msg + 16, 3, "files in flight do not fit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantByteDecodeError(t, img, tc.off, tc.val, tc.want)
		})
	}
}

// FuzzUnixSocketObject mutates images holding unix-socket objects: the decoder never panics,
// returns only FormatErrors, and an accepted image re-encodes to the same bytes.
func FuzzUnixSocketObject(f *testing.F) {
	f.Add(encodeToBytes(f, unixProcess()))
	f.Add(encodeToBytes(f, acceptProcess()))
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeCanonical(t, data)
	})
}
