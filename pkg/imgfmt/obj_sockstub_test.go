package imgfmt

import (
	"bytes"
	"strings"
	"testing"
)

// stubProcess returns a process whose fd 5 is an ICMP socket recorded as a stub.
func stubProcess() *Process {
	p := minimalProcess()
	p.Files = append(p.Files, File{FD: 5, Kind: FileSocket, StatusFlags: 2 | 0o4000, Offset: -1, Desc: "socket:[9]"})
	p.Objects = []Object{{ID: 1, Key: 0x99, FDs: []ObjectFD{{FD: 5}}, Body: &SocketStubObject{Family: 2, Type: 2, Protocol: 1}}}
	return p
}

func TestSocketStubCodec(t *testing.T) {
	q, _ := objectRoundTrip(t, stubProcess())
	if o := viewOf(q).Objects[0]; o.Kind != "socket-stub" || !strings.Contains(o.Detail, "family 2 type 2 protocol 1") {
		t.Errorf("summary %+v", o)
	}
	for _, tc := range []struct {
		name, want string
		mod        func(p *Process)
	}{
		{"family", "socket family 0", func(p *Process) { p.Objects[0].Body.(*SocketStubObject).Family = 0 }},
		{"type", "type 11", func(p *Process) { p.Objects[0].Body.(*SocketStubObject).Type = 11 }},
		{"protocol", "protocol 65536", func(p *Process) { p.Objects[0].Body.(*SocketStubObject).Protocol = 1 << 16 }},
		{"fd kind", "fd is not a socket", func(p *Process) { p.Files[len(p.Files)-1].Kind = FileFIFO }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := stubProcess()
			tc.mod(p)
			wantEncodeError(t, p, tc.want)
		})
	}
	img := encodeToBytes(t, stubProcess())
	body := bytes.LastIndex(img, []byte(OwnerRunscCkpt+"\x00")) + pad4(len(OwnerRunscCkpt)+1) + objectFixedSize + objectFDSize
	for _, tc := range []struct {
		off  int
		val  byte
		want string
	}{{12, 1, "reserved"}, {1, 1, "socket family 258"}} {
		b := bytes.Clone(img)
		b[body+tc.off] = tc.val
		wantDecodeError(t, b, tc.want)
	}
}
