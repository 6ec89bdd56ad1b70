package ckpt

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/socket"
	"gvisor.dev/gvisor/pkg/syserr"
)

// Socket options are captured and restored through the socket's own getsockopt/setsockopt
// (socket.Socket.GetSockOpt/SetSockOpt, the exported methods the syscalls call), so the image holds
// each value exactly as the guest would read it. Only options a program sets and a thaw can set
// back are listed; read-only ones (SO_TYPE, SO_ERROR, SO_ACCEPTCONN, ...) are left out. A thaw sets
// an option only where the fresh socket's value differs. This file is shared by the socket kinds:
// sockOptionsCommon holds the SOL_SOCKET options of every family.

// sockOpt names one option.
type sockOpt struct{ level, name int }

// sockOptionsCommon are the SOL_SOCKET options every socket family records.
var sockOptionsCommon = []sockOpt{
	{linux.SOL_SOCKET, linux.SO_REUSEADDR},
	{linux.SOL_SOCKET, linux.SO_REUSEPORT},
	{linux.SOL_SOCKET, linux.SO_KEEPALIVE},
	{linux.SOL_SOCKET, linux.SO_BROADCAST},
	{linux.SOL_SOCKET, linux.SO_OOBINLINE},
	{linux.SOL_SOCKET, linux.SO_LINGER},
	{linux.SOL_SOCKET, linux.SO_RCVTIMEO},
	{linux.SOL_SOCKET, linux.SO_SNDTIMEO},
	{linux.SOL_SOCKET, linux.SO_TIMESTAMP},
	{linux.SOL_SOCKET, linux.SO_PASSCRED},
	{linux.SOL_SOCKET, linux.SO_RCVBUF},
	{linux.SOL_SOCKET, linux.SO_SNDBUF},
}

// sockOptionsTCP are the SOL_TCP options of TCP sockets.
var sockOptionsTCP = []sockOpt{
	{linux.SOL_TCP, linux.TCP_NODELAY},
	{linux.SOL_TCP, linux.TCP_CORK},
	{linux.SOL_TCP, linux.TCP_KEEPIDLE},
	{linux.SOL_TCP, linux.TCP_KEEPINTVL},
	{linux.SOL_TCP, linux.TCP_KEEPCNT},
	{linux.SOL_TCP, linux.TCP_SYNCNT},
	{linux.SOL_TCP, linux.TCP_LINGER2},
	{linux.SOL_TCP, linux.TCP_DEFER_ACCEPT},
	{linux.SOL_TCP, linux.TCP_USER_TIMEOUT},
	{linux.SOL_TCP, linux.TCP_INQ},
}

// sockOptionsIP are the SOL_IP options of AF_INET sockets.
var sockOptionsIP = []sockOpt{
	{linux.SOL_IP, linux.IP_TOS},
	{linux.SOL_IP, linux.IP_TTL},
	{linux.SOL_IP, linux.IP_RECVTOS},
	{linux.SOL_IP, linux.IP_PKTINFO},
	{linux.SOL_IP, linux.IP_RECVERR},
	{linux.SOL_IP, linux.IP_MULTICAST_TTL},
	{linux.SOL_IP, linux.IP_MULTICAST_LOOP},
}

// sockOptionsIPv6 are the SOL_IPV6 options of AF_INET6 sockets. IPV6_V6ONLY must come before the
// bind, as all of these do (options are set right after the socket is made).
var sockOptionsIPv6 = []sockOpt{
	{linux.SOL_IPV6, linux.IPV6_V6ONLY},
	{linux.SOL_IPV6, linux.IPV6_UNICAST_HOPS},
	{linux.SOL_IPV6, linux.IPV6_TCLASS},
	{linux.SOL_IPV6, linux.IPV6_RECVTCLASS},
	{linux.SOL_IPV6, linux.IPV6_RECVPKTINFO},
	{linux.SOL_IPV6, linux.IPV6_RECVERR},
	{linux.SOL_IPV6, linux.IPV6_MULTICAST_HOPS},
	{linux.SOL_IPV6, linux.IPV6_MULTICAST_LOOP},
}

// knownSockOptions reports whether every option of opts is one of lists: a thaw sets only options
// a freeze records, never whatever a crafted image names.
func knownSockOptions(opts []imgfmt.SockOption, lists ...[]sockOpt) error {
	for _, o := range opts {
		known := false
		for _, l := range lists {
			for _, k := range l {
				known = known || (uint32(k.level) == o.Level && uint32(k.name) == o.Name)
			}
		}
		if !known {
			return invalidf("socket option %d/%d is not one a freeze records", o.Level, o.Name)
		}
	}
	return nil
}

// getSockOpt returns option o of s as getsockopt(2) would, or ok false if s does not have it.
func getSockOpt(t *kernel.Task, s socket.Socket, o sockOpt) (val []byte, ok bool) {
	v, err := s.GetSockOpt(t, o.level, o.name, 0, imgfmt.MaxSockOptLen)
	if err != nil || v == nil || v.SizeBytes() > imgfmt.MaxSockOptLen {
		return nil, false
	}
	b := make([]byte, v.SizeBytes())
	v.MarshalBytes(b)
	return b, true
}

// captureSockOptions records every option of opts that s has.
func captureSockOptions(t *kernel.Task, s socket.Socket, opts []sockOpt) []imgfmt.SockOption {
	var out []imgfmt.SockOption
	for _, o := range opts {
		if b, ok := getSockOpt(t, s, o); ok {
			out = append(out, imgfmt.SockOption{Level: uint32(o.level), Name: uint32(o.name), Value: b})
		}
	}
	return out
}

// restoreSockOptions sets every recorded option whose value differs from s's current one, then
// reads it back: a value the socket does not take as recorded is an error (the thaw would
// otherwise change the program's socket silently). SO_RCVBUF and SO_SNDBUF are read back doubled
// by Linux and gVisor, so half the recorded value is set; they are best effort (TCP's receive
// buffer auto-tuning may have grown the recorded value past what setsockopt allows).
func restoreSockOptions(t *kernel.Task, s socket.Socket, opts []imgfmt.SockOption) error {
	for _, o := range opts {
		so := sockOpt{int(o.Level), int(o.Name)}
		cur, ok := getSockOpt(t, s, so)
		if ok && bytes.Equal(cur, o.Value) {
			continue
		}
		val := o.Value
		buffer := so.level == linux.SOL_SOCKET && (so.name == linux.SO_RCVBUF || so.name == linux.SO_SNDBUF)
		if buffer && len(val) == 4 {
			val = binary.LittleEndian.AppendUint32(nil, binary.LittleEndian.Uint32(val)/2)
		}
		if err := s.SetSockOpt(t, so.level, so.name, val); err != nil {
			return fmt.Errorf("setsockopt(%d, %d): %w", so.level, so.name, sockErrno(err))
		}
		if got, ok := getSockOpt(t, s, so); !buffer && (!ok || !bytes.Equal(got, o.Value)) {
			return fmt.Errorf("setsockopt(%d, %d) to %x reads back %x: %w", so.level, so.name, o.Value, got, errUnsupportedObject)
		}
	}
	return nil
}

// sockErrno turns a socket call's error into gVisor's errno error, the one conversion of the
// freeze and the thaw (syserr's ToError gives host errnos for some, such as EADDRINUSE).
func sockErrno(e *syserr.Error) error {
	return linuxerr.ErrorFromUnix(unix.Errno(e.ToLinux()))
}
