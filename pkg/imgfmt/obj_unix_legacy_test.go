package imgfmt

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// sockOptionsSize is the encoded size of an option list.
func sockOptionsSize(opts []SockOption) int {
	n := 4
	for _, o := range opts {
		n += sockOptFixedSize + len(o.Value)
	}
	return n
}

// legacyUnixBody is a one-end unix socket body in the older layout: a bound, connected datagram
// socket with one queued message, options opts.
func legacyUnixBody(opts *legacyUnixOptions) []byte {
	w := &wbuf{}
	w.u32(sockDgram)
	w.u32(1)
	w.u32(UnixConnected | UnixConnectionless) // flags: bit 8 clear
	w.u32(0)                                  // backlog
	w.u32(0)                                  // pending
	w.u32(1)                                  // messages
	w.u32(2)                                  // address length
	w.u32(0)                                  // peer address length
	opts.encode(w)
	w.b = append(w.b, "/a"...)
	w.u32(3) // data length
	w.u32(0) // from length
	w.u32(0) // flags
	w.u32(0) // rights
	w.u32(0) // files
	w.b = append(w.b, "abc"...)
	return w.b
}

// TestUnixLegacyOptions: a unix socket body of the older layout (options in the fixed 48-byte
// block) still decodes, into the option list a freeze records now, with the same values; its
// checks still apply; re-encoded it gives the same bytes (images stay canonical), unless its
// options were changed, which takes the current layout.
func TestUnixLegacyOptions(t *testing.T) {
	old := &legacyUnixOptions{Flags: legacyPassCred | legacyKeepAlive | legacyLinger, LingerSeconds: 3, SendBuffer: 212992,
		RecvBuffer: 4096, RecvTimeout: 1_500_000_000, SendTimeout: 250_000}
	r := &rbuf{b: legacyUnixBody(old), what: "legacy body"}
	body := decodeUnixSocket(r)
	if r.err != nil {
		t.Fatalf("decoding a legacy body: %v", r.err)
	}
	e := body.(*UnixSocketObject).Ends[0]
	if !e.legacyOptions || e.Flags != UnixConnected|UnixConnectionless || e.Addr != "/a" || len(e.Queue) != 1 || string(e.Queue[0].Data) != "abc" {
		t.Fatalf("decoded end %+v", e)
	}
	le := func(b ...byte) []byte { return b }
	want := map[uint32][]byte{
		soReuseAddr: le(0, 0, 0, 0), soReusePort: le(0, 0, 0, 0), soKeepAlive: le(1, 0, 0, 0), soBroadcast: le(0, 0, 0, 0),
		soLinger:   le(1, 0, 0, 0, 3, 0, 0, 0),
		soRcvTimeo: le(1, 0, 0, 0, 0, 0, 0, 0, 0x20, 0xa1, 0x07, 0, 0, 0, 0, 0), // 1 s 500000 µs
		soSndTimeo: le(0, 0, 0, 0, 0, 0, 0, 0, 0xfa, 0, 0, 0, 0, 0, 0, 0),       // 250 µs
		soPassCred: le(1, 0, 0, 0), soRcvBuf: le(0, 0x10, 0, 0), soSndBuf: le(0, 0x40, 3, 0),
	}
	if len(e.Options) != len(want) {
		t.Fatalf("%d options, want %d: %+v", len(e.Options), len(want), e.Options)
	}
	for _, o := range e.Options {
		if o.Level != solSocket || !reflect.DeepEqual(o.Value, want[o.Name]) {
			t.Errorf("option %d/%d = %v, want %v", o.Level, o.Name, o.Value, want[o.Name])
		}
	}
	d := (&UnixSocketObject{Type: sockDgram, Ends: []UnixSocketEnd{e}}).describe()
	for _, w := range []string{"keepalive", "passcred", "linger 3s", "rcvtimeo 1500000000ns", "sndtimeo 250000ns", "rcvbuf 4096", "sndbuf 212992"} {
		if !strings.Contains(d, w) {
			t.Errorf("describe %q lacks %q", d, w)
		}
	}
	// Re-encoded unchanged: the very same bytes.
	w := &wbuf{}
	body.encode(w)
	if !bytes.Equal(w.b, legacyUnixBody(old)) {
		t.Error("re-encoding a legacy body changed its bytes")
	}
	// Options the block cannot hold (SO_OOBINLINE): the current layout (bit 8, the list), which
	// decodes to them.
	e.Options = append(e.Options, SockOption{Level: solSocket, Name: soOOBInline, Value: le(1, 0, 0, 0)})
	w = &wbuf{}
	(&UnixSocketObject{Type: sockDgram, Ends: []UnixSocketEnd{e}}).encode(w)
	r = &rbuf{b: w.b, what: "re-encoded"}
	again := decodeUnixSocket(r)
	if r.err != nil || again.(*UnixSocketObject).Ends[0].legacyOptions || !reflect.DeepEqual(again.(*UnixSocketObject).Ends[0].Options, e.Options) {
		t.Errorf("re-encoded with changed options: %v, %+v", r.err, again)
	}
	// The legacy block's checks still apply.
	for _, tc := range []struct {
		mod  func(o *legacyUnixOptions)
		want string
	}{
		{func(o *legacyUnixOptions) { o.Flags |= 1 << 7 }, "unknown flags"},
		{func(o *legacyUnixOptions) { o.SendBuffer = -1 }, "SO_SNDBUF -1 out of range"},
		{func(o *legacyUnixOptions) { o.RecvTimeout = -1 }, "negative timeout"},
		{func(o *legacyUnixOptions) { o.LingerSeconds = -1 }, "negative linger"},
		{func(o *legacyUnixOptions) { o.SendTimeout = 1001 }, "whole number of microseconds"},
		{func(o *legacyUnixOptions) { o.RecvBuffer = 1 << 31 }, "SO_RCVBUF 2147483648 out of range"},
	} {
		bad := *old
		tc.mod(&bad)
		r := &rbuf{b: legacyUnixBody(&bad), what: "legacy body"}
		decodeUnixSocket(r)
		if r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
			t.Errorf("decoding %+v: %v, want %q", bad, r.err, tc.want)
		}
	}
}
