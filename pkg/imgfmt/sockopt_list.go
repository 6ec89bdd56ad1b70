package imgfmt

// This file holds the socket option list every socket body carries: inet (kind 4) and unix (kind
// 3; older unix bodies held a fixed block, which the decoder turns into this list: sockopt.go).

// SockOption is one socket option as getsockopt(2) returned it: the level (SOL_SOCKET, SOL_TCP,
// ...), the option name and the value's bytes in the guest's layout (an int, a struct timeval, a
// struct linger...). A thaw sets it back with setsockopt(2) semantics. Encoding: u32 level, u32
// name, u32 length (≤ MaxSockOptLen), the bytes. Socket kinds share this layout.
type SockOption struct {
	Level uint32
	Name  uint32
	Value []byte
}

const (
	// MaxSockOptLen bounds one option's value (the largest option recorded, struct timeval, has 16).
	MaxSockOptLen = 64
	// MaxSockOpts bounds the options of one socket.
	MaxSockOpts = 128
	// sockOptFixedSize is the encoded size of an option without its value.
	sockOptFixedSize = 12
)

// encodeSockOptions appends a u32 count and the options.
func encodeSockOptions(w *wbuf, opts []SockOption) {
	w.u32(uint32(len(opts)))
	for _, o := range opts {
		w.u32(o.Level)
		w.u32(o.Name)
		w.u32(uint32(len(o.Value)))
		w.bytes(o.Value)
	}
}

// decodeSockOptions reads what encodeSockOptions wrote, bounding the count before allocating.
func decodeSockOptions(r *rbuf) []SockOption {
	n := r.u32()
	if r.err != nil {
		return nil
	}
	if n > MaxSockOpts || int64(n)*sockOptFixedSize > int64(len(r.b)-r.off) {
		r.fail("%d socket options do not fit", n)
		return nil
	}
	var opts []SockOption
	for i := uint32(0); i < n && r.err == nil; i++ {
		o := SockOption{Level: r.u32(), Name: r.u32()}
		l := r.u32()
		if r.err == nil && l > MaxSockOptLen {
			r.fail("socket option %d/%d: value of %d bytes exceeds %d", o.Level, o.Name, l, MaxSockOptLen)
			return nil
		}
		o.Value = append([]byte{}, r.take(int(l))...)
		opts = append(opts, o)
	}
	return opts
}

// checkSockOptions returns why opts are not valid, or "": bounded, each option at most once.
func checkSockOptions(opts []SockOption) string {
	if len(opts) > MaxSockOpts {
		return "too many socket options"
	}
	seen := make(map[[2]uint32]bool)
	for _, o := range opts {
		if len(o.Value) > MaxSockOptLen {
			return "socket option value too long"
		}
		k := [2]uint32{o.Level, o.Name}
		if seen[k] {
			return "socket option recorded twice"
		}
		seen[k] = true
	}
	return ""
}
