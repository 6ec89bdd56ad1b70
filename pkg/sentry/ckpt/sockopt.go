package ckpt

import (
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/sentry/socket"
	"gvisor.dev/gvisor/pkg/tcpip"
)

// Socket options common to every family (SOL_SOCKET): captured and applied through the exported
// getters and setters of tcpip.SocketOptions and the socket's send/receive timeouts. Used by the
// AF_UNIX object (obj_unix.go); written so that any socket kind with a tcpip.SocketOptions can use it.

// captureSockOpts records s's SOL_SOCKET options; ops is its endpoint's SocketOptions.
func captureSockOpts(s socket.Socket, ops *tcpip.SocketOptions) imgfmt.SocketOptions {
	o := imgfmt.SocketOptions{
		SendBuffer:  ops.GetSendBufferSize(),
		RecvBuffer:  ops.GetReceiveBufferSize(),
		RecvTimeout: s.RecvTimeout(),
		SendTimeout: s.SendTimeout(),
	}
	for _, f := range []struct {
		on  bool
		bit uint32
	}{
		{ops.GetPassCred(), imgfmt.SockOptPassCred},
		{ops.GetReuseAddress(), imgfmt.SockOptReuseAddr},
		{ops.GetReusePort(), imgfmt.SockOptReusePort},
		{ops.GetKeepAlive(), imgfmt.SockOptKeepAlive},
		{ops.GetBroadcast(), imgfmt.SockOptBroadcast},
	} {
		if f.on {
			o.Flags |= f.bit
		}
	}
	if l := ops.GetLinger(); l.Enabled {
		o.Flags |= imgfmt.SockOptLinger
		o.LingerSeconds = int32(l.Timeout / time.Second)
	}
	return o
}

// applySockOpts sets the options o on s (ops: its endpoint's SocketOptions). The buffer sizes are
// set as recorded (getsockopt's values), notifying the endpoint so that a connected socket's
// queue limit follows, as setsockopt(SO_SNDBUF) does.
func applySockOpts(s socket.Socket, ops *tcpip.SocketOptions, o imgfmt.SocketOptions) {
	ops.SetPassCred(o.Flags&imgfmt.SockOptPassCred != 0)
	ops.SetReuseAddress(o.Flags&imgfmt.SockOptReuseAddr != 0)
	ops.SetReusePort(o.Flags&imgfmt.SockOptReusePort != 0)
	ops.SetKeepAlive(o.Flags&imgfmt.SockOptKeepAlive != 0)
	ops.SetBroadcast(o.Flags&imgfmt.SockOptBroadcast != 0)
	ops.SetLinger(tcpip.LingerOption{
		Enabled: o.Flags&imgfmt.SockOptLinger != 0,
		Timeout: time.Duration(o.LingerSeconds) * time.Second,
	})
	if o.SendBuffer > 0 {
		ops.SetSendBufferSize(o.SendBuffer, true /* notify */)
	}
	if o.RecvBuffer > 0 {
		ops.SetReceiveBufferSize(o.RecvBuffer, true /* notify */)
	}
	s.SetRecvTimeout(o.RecvTimeout)
	s.SetSendTimeout(o.SendTimeout)
}
