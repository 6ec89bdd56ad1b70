package imgfmt

import "fmt"

// SocketStubObject is a socket whose state the image does not keep (ObjSocketStub): ICMP (ping),
// raw, netlink and packet sockets, host-network sockets. A thaw gives its fds a fresh, unbound
// socket of the same family, type and protocol (so socket calls work on it, never ENOTSOCK), or the
// pipe placeholder if the thawer cannot make one. Body layout: 0 family u32, 4 type u32 (the
// socket type, without SOCK_NONBLOCK/SOCK_CLOEXEC), 8 protocol u32, 12 reserved u32 (16 bytes).
// docs/sockets.md.
type SocketStubObject struct {
	Family, Type, Protocol uint32
}

// Bounds of a socket stub: Linux's AF_MAX, the socket types (SOCK_STREAM … SOCK_PACKET) and
// protocol numbers (IP protocols, netlink families and packet sockets' ethertypes fit 16 bits).
const (
	stubFamilyMax   = 46
	stubTypeMax     = 10
	stubProtocolMax = 1 << 16
)

// Kind implements ObjectBody.
func (*SocketStubObject) Kind() ObjectKind { return ObjSocketStub }

func (o *SocketStubObject) encode(w *wbuf) {
	w.u32(o.Family)
	w.u32(o.Type)
	w.u32(o.Protocol)
	w.u32(0)
}

func decodeSocketStub(r *rbuf) ObjectBody {
	o := &SocketStubObject{Family: r.u32(), Type: r.u32(), Protocol: r.u32()}
	r.zero(4, "reserved")
	return o
}

func (o *SocketStubObject) describe() string {
	return fmt.Sprintf("family %d type %d protocol %d (state not kept: a fresh socket)", o.Family, o.Type, o.Protocol)
}

func (o *SocketStubObject) check(p *Process, obj *Object) string {
	if o.Family == 0 || o.Family >= stubFamilyMax || o.Type == 0 || o.Type > stubTypeMax || o.Protocol >= stubProtocolMax {
		return fmt.Sprintf("socket family %d type %d protocol %d", o.Family, o.Type, o.Protocol)
	}
	if obj.Descs() != 1 {
		return "a socket stub has one open file description"
	}
	for _, f := range obj.FDs {
		if i := p.fileIndex(f.FD); i >= 0 && p.Files[i].Kind != FileSocket {
			return "fd is not a socket"
		}
	}
	return ""
}
