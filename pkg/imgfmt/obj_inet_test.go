package imgfmt

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// inetProcess returns a process with three inet objects: a listening TCP6 socket (fd 5), a UDP
// socket with two queued datagrams (fd 6), and a loopback TCP pair (fds 7, 8).
func inetProcess() *Process {
	p := minimalProcess()
	for fd := int32(5); fd <= 8; fd++ {
		p.Files = append(p.Files, File{FD: fd, Kind: FileSocket, StatusFlags: 2, Offset: -1, Desc: "socket:[1]"})
	}
	lo4 := []byte{127, 0, 0, 1}
	lo6 := make([]byte, 16)
	lo6[15] = 1
	p.Objects = []Object{
		{ID: 1, Key: 1, FDs: []ObjectFD{{FD: 5}}, Body: &InetSocketObject{Ends: []InetEnd{{
			Family: afInet6, Type: sockStream, Protocol: ipprotoTCP, State: InetListening, Backlog: 17,
			Local:   InetAddr{Port: 8080, Addr: lo6, Scope: 0},
			Options: []SockOption{{Level: 1, Name: 2, Value: []byte{1, 0, 0, 0}}},
		}}}},
		{ID: 2, Key: 2, FDs: []ObjectFD{{FD: 6}}, Body: &InetSocketObject{Ends: []InetEnd{{
			Family: afInet, Type: sockDgram, State: InetBound, Local: InetAddr{Port: 9000, Addr: lo4},
			Datagrams: []Datagram{{From: InetAddr{Port: 1, Addr: lo4}, Data: []byte("one")}, {From: InetAddr{Port: 2, Addr: lo4}, Data: []byte("two")}},
		}}}},
		{ID: 3, Key: 3, FDs: []ObjectFD{{FD: 7, Desc: 0}, {FD: 8, Desc: 1}}, Body: &InetSocketObject{Ends: []InetEnd{
			{Family: afInet, Type: sockStream, State: InetConnected, Local: InetAddr{Port: 40000, Addr: lo4}, Remote: InetAddr{Port: 40001, Addr: lo4}, Data: []byte("to 0")},
			{Family: afInet, Type: sockStream, State: InetConnected, ShutWrite: true, Local: InetAddr{Port: 40001, Addr: lo4}, Remote: InetAddr{Port: 40000, Addr: lo4}},
		}}},
	}
	return p
}

func TestInetRoundTrip(t *testing.T) {
	p := inetProcess()
	q, _ := objectRoundTrip(t, p)
	s := viewOf(q)
	for i, want := range []string{"tcp6 listening [::1]:8080 backlog 17", "udp bound 127.0.0.1:9000, 2 datagrams queued", "tcp connected 127.0.0.1:40000 -> 127.0.0.1:40001, 4 bytes unread; tcp connected 127.0.0.1:40001 -> 127.0.0.1:40000, shut down for writing"} {
		if s.Objects[i].Kind != "inet-socket" || !strings.Contains(s.Objects[i].Detail, want) {
			t.Errorf("object %d: %s %q, want detail containing %q", i+1, s.Objects[i].Kind, s.Objects[i].Detail, want)
		}
	}
}

// TestInetChecks: invalid bodies are refused by the encoder with a FormatError naming the object.
func TestInetChecks(t *testing.T) {
	end := func(p *Process, o, e int) *InetEnd { return &p.Objects[o].Body.(*InetSocketObject).Ends[e] }
	for _, tc := range []struct {
		name, want string
		mod        func(p *Process)
	}{
		{"family", "not AF_INET", func(p *Process) { end(p, 0, 0).Family = 1 }},
		{"type", "not SOCK_STREAM", func(p *Process) { end(p, 0, 0).Type = 5 }},
		{"protocol", "does not match type", func(p *Process) { end(p, 1, 0).Protocol = ipprotoTCP }},
		{"state", "unknown state", func(p *Process) { end(p, 0, 0).State = 9 }},
		{"udp listening", "UDP socket cannot be listening", func(p *Process) { end(p, 1, 0).State = InetListening }},
		{"backlog", "backlog of a socket that is not listening", func(p *Process) { end(p, 1, 0).Backlog = 3 }},
		{"local len", "local address of 4 bytes", func(p *Process) { end(p, 0, 0).Local.Addr = []byte{1, 2, 3, 4} }},
		{"unbound port", "unbound socket has port 0", func(p *Process) { end(p, 0, 0).State = InetUnbound; end(p, 0, 0).Backlog = 0 }},
		{"remote", "remote address belongs", func(p *Process) { end(p, 1, 0).Remote = InetAddr{Port: 1, Addr: []byte{1, 1, 1, 1}} }},
		{"data", "unread stream data on a socket that is not", func(p *Process) { end(p, 1, 0).Data = []byte("x") }},
		{"shut write", "shut down for writing but not", func(p *Process) { end(p, 1, 0).ShutWrite = true }},
		{"shut write listening", "shut down for writing but not", func(p *Process) { end(p, 0, 0).ShutWrite = true }},
		{"datagram family", "datagram source address", func(p *Process) { end(p, 1, 0).Datagrams[0].From.Addr = make([]byte, 16) }},
		{"pair udp", "a pair is two connected TCP ends", func(p *Process) { end(p, 2, 0).State = InetReset; end(p, 2, 0).Data = nil }},
		{"single connected", "must be recorded as reset", func(p *Process) {
			p.Objects[2].Body.(*InetSocketObject).Ends = p.Objects[2].Body.(*InetSocketObject).Ends[:1]
			p.Objects[2].FDs[1].Desc = 0
		}},
		{"ends vs descs", "2 ends but 1 open file", func(p *Process) { p.Objects[2].FDs[1].Desc = 0 }},
		{"option twice", "recorded twice", func(p *Process) { e := end(p, 0, 0); e.Options = append(e.Options, e.Options[0]) }},
		{"option long", "value too long", func(p *Process) { end(p, 0, 0).Options[0].Value = make([]byte, 65) }},
		{"fd kind", "fd is not a socket", func(p *Process) { p.Files[len(p.Files)-4].Kind = FileFIFO }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := inetProcess()
			tc.mod(p)
			var fe *FormatError
			err := Encode(new(bytes.Buffer), p)
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "inet-socket") {
				t.Fatalf("Encode: %v, want a FormatError containing %q", err, tc.want)
			}
		})
	}
}

// TestInetDecodeErrors patches the first inet note (the listening socket) of an encoded image:
// counts, lengths and reserved bytes must be format errors, never a panic or an allocation of what
// the note cannot hold.
func TestInetDecodeErrors(t *testing.T) {
	p := inetProcess()
	p.Objects = p.Objects[:1]
	img := encodeToBytes(t, p)
	at := lastOwnNoteDesc(img)
	body := objectFixedSize + objectFDSize
	end := body + 8
	opts := end + 12 + 2*inetAddrLen
	for _, tc := range []struct {
		name string
		off  int
		val  []byte
		want string
	}{
		{"ends", body, []byte{3}, "with 3 ends"},
		{"reserved", body + 4, []byte{1}, "reserved"},
		{"end flags", end + 7, []byte{8}, "unknown flags"},
		{"addr len", end + 12 + 2, []byte{5}, "inet address length 5"},
		{"addr reserved", end + 12 + 3, []byte{1}, "reserved"},
		{"option count", opts, []byte{0xff, 0xff, 0xff, 0x7f}, "socket options do not fit"},
		{"option len", opts + 4 + 8, []byte{0xff}, "exceeds 64"},
		{"data len", opts + 4 + 16, []byte{0xff, 0xff, 0xff, 0xff}, "do not fit"},
		{"datagram count", opts + 4 + 16 + 4, []byte{0xff, 0xff, 0xff, 0xff}, "datagrams do not fit"},
		{"state", end + 6, []byte{7}, "unknown state"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(img)
			copy(b[at+tc.off:], tc.val)
			wantDecodeError(t, b, tc.want)
		})
	}
}

// FuzzDecodeInet is FuzzDecode seeded with an image holding inet socket objects, so that the
// fuzzer mutates their bodies: never a panic, a FormatError for what is refused, and accepted
// images re-encode to the same bytes.
func FuzzDecodeInet(f *testing.F) {
	f.Add(encodeToBytes(f, inetProcess()))
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeCanonical(t, data)
	})
}

// resetProcess returns a process with one TCP end recorded to be reset (fd 5, its peer in another
// process), with unread bytes; shutWrite sets its flag.
func resetProcess(shutWrite bool) *Process {
	p := minimalProcess()
	p.Files = append(p.Files, File{FD: 5, Kind: FileSocket, StatusFlags: 2, Offset: -1, Desc: "socket:[1]"})
	lo4 := []byte{127, 0, 0, 1}
	p.Objects = []Object{{ID: 1, Key: 1, FDs: []ObjectFD{{FD: 5}}, Body: &InetSocketObject{Ends: []InetEnd{{
		Family: afInet, Type: sockStream, State: InetReset, ShutWrite: shutWrite,
		Local: InetAddr{Port: 40000, Addr: lo4}, Remote: InetAddr{Port: 40001, Addr: lo4}, Data: []byte("left"),
	}}}}}
	return p
}

// TestInetResetShutWrite: a reset end (a connection to another process of a tree) carries
// ShutWrite, round trip; an image written before reset ends could carry it (flags byte 0) decodes
// with it clear, and flipping that byte to 1 is the only change between the two encodings.
func TestInetResetShutWrite(t *testing.T) {
	q, img := objectRoundTrip(t, resetProcess(true))
	e := q.Objects[0].Body.(*InetSocketObject).Ends[0]
	if !e.ShutWrite || e.State != InetReset || string(e.Data) != "left" {
		t.Fatalf("decoded end %+v, want a reset end shut down for writing with its 4 bytes", e)
	}
	old := encodeToBytes(t, resetProcess(false))
	q, err := Decode(bytes.NewReader(old), int64(len(old)))
	if err != nil {
		t.Fatalf("an image with a reset end as older encoders wrote it: %v", err)
	}
	if e := q.Objects[0].Body.(*InetSocketObject).Ends[0]; e.ShutWrite || e.State != InetReset {
		t.Errorf("older image's reset end decoded as %+v", e)
	}
	var diff []int
	for i := range old {
		if old[i] != img[i] {
			diff = append(diff, i)
		}
	}
	if len(old) != len(img) || len(diff) != 1 || old[diff[0]] != 0 || img[diff[0]] != inetShutWrite {
		t.Errorf("the two encodings differ at %v (sizes %d, %d), want exactly the flags byte, 0 vs 1", diff, len(old), len(img))
	}
}
