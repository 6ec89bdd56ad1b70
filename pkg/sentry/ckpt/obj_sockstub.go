package ckpt

import (
	"fmt"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/socket"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// Sockets whose state an image does not keep (docs/sockets.md): ICMP (ping), raw, netlink and
// packet sockets, host-network sockets. The image records their family, type and protocol
// (socket.Socket.Type, exported), and the thaw makes a fresh, unbound socket of that kind for their
// fd: socket calls keep working on it (never ENOTSOCK), its bindings, connections, options and
// queues are gone. If the thawer cannot make one (a raw socket without CAP_NET_RAW, a family the
// thawing sandbox lacks) the fd gets the pipe placeholder instead, logged: never a failed thaw.

// captureSocketStub records s as a socket stub.
func captureSocketStub(s socket.Socket) (objectIdentity, imgfmt.ObjectBody, bool, error) {
	family, stype, protocol := s.Type()
	return s, &imgfmt.SocketStubObject{Family: uint32(family), Type: uint32(stype), Protocol: uint32(protocol)}, true, nil
}

// thawSocketStub makes the fresh socket of a socket stub, with its description's O_NONBLOCK.
func thawSocketStub(t *kernel.Task, p *imgfmt.Process, o *imgfmt.Object, b *imgfmt.SocketStubObject) (*thawedObject, error) {
	f, serr := socket.New(t, int(b.Family), linux.SockType(b.Type), int(b.Protocol))
	if serr != nil || f == nil {
		first := firstFile(p, o)
		if first == nil {
			return nil, fmt.Errorf("socket stub without an fd: %w", errInvalidImage)
		}
		ph, err := placeholder(t, first)
		if err != nil {
			return nil, fmt.Errorf("placeholder: %w", err)
		}
		t.Infof("ckpt: thaw: fd %d: socket(%d, %d, %d) failed (%v): a placeholder", first.FD, b.Family, b.Type, b.Protocol, serr)
		return &thawedObject{files: []*vfs.FileDescription{ph}}, nil
	}
	if err := f.SetStatusFlags(t, t.Credentials(), descStatusFlags(p, o, 0)&linux.O_NONBLOCK); err != nil {
		f.DecRef(t)
		return nil, fmt.Errorf("socket stub status flags: %w", err)
	}
	return &thawedObject{files: []*vfs.FileDescription{f}}, nil
}
