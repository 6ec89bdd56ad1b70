package ckpt

import (
	"encoding/binary"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/socket/unix"
)

// Options of AF_UNIX sockets. They are recorded in the one layout every socket kind uses (an
// option list read with the socket's own getsockopt, sockopt_inet.go): the SOL_SOCKET options
// every family has. Images written before held them in a fixed block, which the decoder turns
// into the same list (pkg/imgfmt/sockopt.go). A thaw sets them back through setsockopt and reads
// each back (restoreSockOptions), except the buffer sizes, set exactly as recorded through the
// endpoint (setsockopt doubles and clamps the value it is given, and the refill of a queue may
// have raised the limit, which this sets back).

// captureUnixSockOpts records the options of s.
func captureUnixSockOpts(t *kernel.Task, s *unix.Socket) []imgfmt.SockOption {
	return captureSockOptions(t, s, sockOptionsCommon)
}

// checkUnixSockOpts refuses options a freeze does not record for an AF_UNIX socket (EINVAL).
func checkUnixSockOpts(b *imgfmt.UnixSocketObject) error {
	for i := range b.Ends {
		if err := knownSockOptions(b.Ends[i].Options, sockOptionsCommon); err != nil {
			return err
		}
	}
	return nil
}

// applyUnixSockOpts sets the recorded options opts on s.
func applyUnixSockOpts(t *kernel.Task, s *unix.Socket, opts []imgfmt.SockOption) error {
	ops := s.Endpoint().SocketOptions()
	var rest []imgfmt.SockOption
	for _, o := range opts {
		if o.Level != linux.SOL_SOCKET || (o.Name != linux.SO_SNDBUF && o.Name != linux.SO_RCVBUF) || len(o.Value) != 4 {
			rest = append(rest, o)
			continue
		}
		v := int64(int32(binary.LittleEndian.Uint32(o.Value)))
		switch {
		case v <= 0:
		case o.Name == linux.SO_SNDBUF:
			ops.SetSendBufferSize(v, true /* notify: a connected queue's limit follows */)
		default:
			ops.SetReceiveBufferSize(v, true /* notify */)
		}
	}
	return restoreSockOptions(t, s, rest)
}
