package imgfmt

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"strings"
)

// Socket options have one layout in images, the SockOption list of sockopt_list.go, used by every
// socket body. Unix socket bodies written before that carried a fixed 48-byte block of SOL_SOCKET
// options instead (unix end flags bit 8 clear); the decoder reads it into the list form here, so a
// thaw sees one layout whatever the image's age. To keep images canonical (one encoding per
// Process), an end decoded from a block is written back as that block (legacyBlock); a freeze never
// writes one.

// legacyUnixOptions is the fixed 48-byte block of older unix socket bodies: u32 flags (bit 0
// SO_PASSCRED, 1 SO_REUSEADDR, 2 SO_REUSEPORT, 3 SO_KEEPALIVE, 4 SO_BROADCAST, 5 SO_LINGER on), i32
// linger seconds, i64 SO_SNDBUF, i64 SO_RCVBUF, i64 SO_RCVTIMEO and i64 SO_SNDTIMEO in nanoseconds
// (0: none), u64 reserved.
type legacyUnixOptions struct {
	Flags         uint32
	LingerSeconds int32
	SendBuffer    int64
	RecvBuffer    int64
	RecvTimeout   int64
	SendTimeout   int64
}

// legacyUnixOptions flags.
const (
	legacyPassCred  = 1 << 0
	legacyReuseAddr = 1 << 1
	legacyReusePort = 1 << 2
	legacyKeepAlive = 1 << 3
	legacyBroadcast = 1 << 4
	legacyLinger    = 1 << 5
	legacyKnown     = 1<<6 - 1
	// legacyUnixOptionsSize is the encoded size of legacyUnixOptions.
	legacyUnixOptionsSize = 48
	// maxSocketBuffer bounds SO_SNDBUF/SO_RCVBUF in a legacy block: getsockopt's int (Linux and
	// gVisor cap them far lower).
	maxSocketBuffer = 1<<31 - 1
)

// SOL_SOCKET option names (Linux x86-64), for the legacy conversion and for describing lists.
const (
	solSocket     = 1
	soReuseAddr   = 2
	soBroadcast   = 6
	soSndBuf      = 7
	soRcvBuf      = 8
	soKeepAlive   = 9
	soOOBInline   = 10
	soLinger      = 13
	soReusePort   = 15
	soPassCred    = 16
	soRcvTimeo    = 20
	soSndTimeo    = 21
	soTimestamp   = 29
	nsecPerSecond = 1_000_000_000
)

func (o *legacyUnixOptions) encode(w *wbuf) {
	w.u32(o.Flags)
	w.i32(o.LingerSeconds)
	w.i64(o.SendBuffer)
	w.i64(o.RecvBuffer)
	w.i64(o.RecvTimeout)
	w.i64(o.SendTimeout)
	w.u64(0)
}

// legacyBlock returns the block an end decoded from one is written back as: only if its options
// are still exactly what the block gave (else the end is written in the current layout).
func legacyBlock(e *UnixSocketEnd) (*legacyUnixOptions, bool) {
	if !e.legacyOptions {
		return nil, false
	}
	o := &legacyUnixOptions{}
	for _, s := range e.Options {
		v := s.Value
		i32 := func(off int) int64 {
			if len(v) < off+4 {
				return 0
			}
			return int64(int32(binary.LittleEndian.Uint32(v[off:])))
		}
		flag := func(bit uint32) {
			if i32(0) != 0 {
				o.Flags |= bit
			}
		}
		switch s.Name {
		case soReuseAddr:
			flag(legacyReuseAddr)
		case soReusePort:
			flag(legacyReusePort)
		case soKeepAlive:
			flag(legacyKeepAlive)
		case soBroadcast:
			flag(legacyBroadcast)
		case soPassCred:
			flag(legacyPassCred)
		case soLinger:
			flag(legacyLinger)
			o.LingerSeconds = int32(i32(4))
		case soRcvBuf:
			o.RecvBuffer = i32(0)
		case soSndBuf:
			o.SendBuffer = i32(0)
		case soRcvTimeo, soSndTimeo:
			if len(v) == 16 {
				ns := int64(binary.LittleEndian.Uint64(v))*nsecPerSecond + int64(binary.LittleEndian.Uint64(v[8:]))*1000
				if s.Name == soRcvTimeo {
					o.RecvTimeout = ns
				} else {
					o.SendTimeout = ns
				}
			}
		}
	}
	if !reflect.DeepEqual(o.list(), e.Options) {
		return nil, false
	}
	return o, true
}

func decodeLegacyUnixOptions(r *rbuf) legacyUnixOptions {
	var o legacyUnixOptions
	o.Flags = r.u32()
	if r.err == nil && o.Flags&^legacyKnown != 0 {
		r.off -= 4
		r.fail("socket options: unknown flags %#x", o.Flags)
	}
	o.LingerSeconds = r.i32()
	o.SendBuffer = r.i64()
	o.RecvBuffer = r.i64()
	o.RecvTimeout = r.i64()
	o.SendTimeout = r.i64()
	r.zero(8, "socket options reserved")
	if r.err == nil {
		if msg := o.check(); msg != "" {
			r.fail("socket options: %s", msg)
		}
	}
	return o
}

// check returns why o is not valid, or "".
func (o *legacyUnixOptions) check() string {
	switch {
	case o.SendBuffer < 0 || o.SendBuffer > maxSocketBuffer:
		return fmt.Sprintf("SO_SNDBUF %d out of range", o.SendBuffer)
	case o.RecvBuffer < 0 || o.RecvBuffer > maxSocketBuffer:
		return fmt.Sprintf("SO_RCVBUF %d out of range", o.RecvBuffer)
	case o.RecvTimeout < 0 || o.SendTimeout < 0:
		return "negative timeout"
	case o.RecvTimeout%1000 != 0 || o.SendTimeout%1000 != 0:
		return "a timeout that is not a whole number of microseconds (struct timeval)"
	case o.LingerSeconds < 0:
		return "negative linger time"
	}
	return ""
}

// list returns o as the options getsockopt(2) reports, in the order a freeze records them
// (SO_OOBINLINE and SO_TIMESTAMP, which the block did not hold, are left out: a thaw keeps the
// fresh socket's, as it did for such images).
func (o *legacyUnixOptions) list() []SockOption {
	i32 := func(v int64) []byte {
		if v > 1<<31-1 {
			v = 1<<31 - 1
		}
		return binary.LittleEndian.AppendUint32(nil, uint32(int32(v)))
	}
	flag := func(bit uint32) []byte {
		if o.Flags&bit != 0 {
			return i32(1)
		}
		return i32(0)
	}
	timeval := func(ns int64) []byte {
		b := binary.LittleEndian.AppendUint64(nil, uint64(ns/nsecPerSecond))
		return binary.LittleEndian.AppendUint64(b, uint64(ns%nsecPerSecond/1000))
	}
	linger := append(flag(legacyLinger), i32(int64(o.LingerSeconds))...)
	opt := func(name uint32, v []byte) SockOption { return SockOption{Level: solSocket, Name: name, Value: v} }
	return []SockOption{
		opt(soReuseAddr, flag(legacyReuseAddr)),
		opt(soReusePort, flag(legacyReusePort)),
		opt(soKeepAlive, flag(legacyKeepAlive)),
		opt(soBroadcast, flag(legacyBroadcast)),
		opt(soLinger, linger),
		opt(soRcvTimeo, timeval(o.RecvTimeout)),
		opt(soSndTimeo, timeval(o.SendTimeout)),
		opt(soPassCred, flag(legacyPassCred)),
		opt(soRcvBuf, i32(o.RecvBuffer)),
		opt(soSndBuf, i32(o.SendBuffer)),
	}
}

// describeSockOptions names the SOL_SOCKET options of opts that are set (flags on, a linger, the
// buffer sizes, timeouts); options of other levels are counted.
func describeSockOptions(opts []SockOption) string {
	var parts []string
	other := 0
	i32 := func(v []byte) int32 {
		if len(v) < 4 {
			return 0
		}
		return int32(binary.LittleEndian.Uint32(v))
	}
	names := map[uint32]string{soReuseAddr: "reuseaddr", soBroadcast: "broadcast", soKeepAlive: "keepalive",
		soOOBInline: "oobinline", soReusePort: "reuseport", soPassCred: "passcred", soTimestamp: "timestamp"}
	for _, o := range opts {
		if o.Level != solSocket {
			other++
			continue
		}
		switch o.Name {
		case soLinger:
			if len(o.Value) == 8 && i32(o.Value) != 0 {
				parts = append(parts, fmt.Sprintf("linger %ds", i32(o.Value[4:])))
			}
		case soSndBuf:
			parts = append(parts, fmt.Sprintf("sndbuf %d", i32(o.Value)))
		case soRcvBuf:
			parts = append(parts, fmt.Sprintf("rcvbuf %d", i32(o.Value)))
		case soRcvTimeo, soSndTimeo:
			if len(o.Value) == 16 {
				sec, usec := int64(binary.LittleEndian.Uint64(o.Value)), int64(binary.LittleEndian.Uint64(o.Value[8:]))
				if sec != 0 || usec != 0 {
					which := map[uint32]string{soRcvTimeo: "rcvtimeo", soSndTimeo: "sndtimeo"}[o.Name]
					parts = append(parts, fmt.Sprintf("%s %dns", which, sec*nsecPerSecond+usec*1000))
				}
			}
		default:
			if n, ok := names[o.Name]; ok && i32(o.Value) != 0 {
				parts = append(parts, n)
			} else if !ok {
				other++
			}
		}
	}
	if other > 0 {
		parts = append(parts, fmt.Sprintf("%d other options", other))
	}
	return strings.Join(parts, " ")
}
