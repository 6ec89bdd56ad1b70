package imgfmt

import (
	"fmt"
	"strings"
)

// SocketOptions are the SOL_SOCKET options a socket body carries (any family): a fixed 48-byte
// block. Layout: u32 flags (SockOpt* bits), i32 linger seconds, i64 SO_SNDBUF, i64 SO_RCVBUF,
// i64 SO_RCVTIMEO and i64 SO_SNDTIMEO in nanoseconds (0: none), u64 reserved.
type SocketOptions struct {
	Flags         uint32
	LingerSeconds int32 // Meaningful with SockOptLinger.
	SendBuffer    int64 // SO_SNDBUF as getsockopt reports it.
	RecvBuffer    int64 // SO_RCVBUF as getsockopt reports it.
	RecvTimeout   int64 // SO_RCVTIMEO, ns.
	SendTimeout   int64 // SO_SNDTIMEO, ns.
}

// SocketOptions flags.
const (
	SockOptPassCred  = 1 << 0 // SO_PASSCRED
	SockOptReuseAddr = 1 << 1 // SO_REUSEADDR
	SockOptReusePort = 1 << 2 // SO_REUSEPORT
	SockOptKeepAlive = 1 << 3 // SO_KEEPALIVE
	SockOptBroadcast = 1 << 4 // SO_BROADCAST
	SockOptLinger    = 1 << 5 // SO_LINGER enabled
	sockOptKnown     = 1<<6 - 1
)

// socketOptionsSize is the encoded size of SocketOptions.
const socketOptionsSize = 48

// maxSocketBuffer bounds SO_SNDBUF/SO_RCVBUF in an image (Linux caps them far lower; this only
// rejects nonsense).
const maxSocketBuffer = 1 << 31

func (o *SocketOptions) encode(w *wbuf) {
	w.u32(o.Flags)
	w.i32(o.LingerSeconds)
	w.i64(o.SendBuffer)
	w.i64(o.RecvBuffer)
	w.i64(o.RecvTimeout)
	w.i64(o.SendTimeout)
	w.u64(0)
}

func decodeSocketOptions(r *rbuf) SocketOptions {
	var o SocketOptions
	o.Flags = r.u32()
	if r.err == nil && o.Flags&^sockOptKnown != 0 {
		r.off -= 4
		r.fail("socket options: unknown flags %#x", o.Flags)
	}
	o.LingerSeconds = r.i32()
	o.SendBuffer = r.i64()
	o.RecvBuffer = r.i64()
	o.RecvTimeout = r.i64()
	o.SendTimeout = r.i64()
	r.zero(8, "socket options reserved")
	return o
}

// check returns why o is not valid, or "".
func (o *SocketOptions) check() string {
	switch {
	case o.SendBuffer < 0 || o.SendBuffer > maxSocketBuffer:
		return fmt.Sprintf("SO_SNDBUF %d out of range", o.SendBuffer)
	case o.RecvBuffer < 0 || o.RecvBuffer > maxSocketBuffer:
		return fmt.Sprintf("SO_RCVBUF %d out of range", o.RecvBuffer)
	case o.RecvTimeout < 0 || o.SendTimeout < 0:
		return "negative timeout"
	case o.LingerSeconds < 0:
		return "negative linger time"
	}
	return ""
}

func (o *SocketOptions) describe() string {
	var parts []string
	for _, f := range []struct {
		bit  uint32
		name string
	}{{SockOptPassCred, "passcred"}, {SockOptReuseAddr, "reuseaddr"}, {SockOptReusePort, "reuseport"},
		{SockOptKeepAlive, "keepalive"}, {SockOptBroadcast, "broadcast"}} {
		if o.Flags&f.bit != 0 {
			parts = append(parts, f.name)
		}
	}
	if o.Flags&SockOptLinger != 0 {
		parts = append(parts, fmt.Sprintf("linger %ds", o.LingerSeconds))
	}
	parts = append(parts, fmt.Sprintf("sndbuf %d rcvbuf %d", o.SendBuffer, o.RecvBuffer))
	if o.RecvTimeout != 0 || o.SendTimeout != 0 {
		parts = append(parts, fmt.Sprintf("rcvtimeo %dns sndtimeo %dns", o.RecvTimeout, o.SendTimeout))
	}
	return strings.Join(parts, " ")
}
