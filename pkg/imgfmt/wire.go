package imgfmt

import (
	"encoding/binary"
	"fmt"
)

// wbuf appends little-endian fields to a byte slice.
type wbuf struct {
	b []byte
}

func (w *wbuf) u8(v uint8)   { w.b = append(w.b, v) }
func (w *wbuf) u16(v uint16) { w.b = binary.LittleEndian.AppendUint16(w.b, v) }
func (w *wbuf) u32(v uint32) { w.b = binary.LittleEndian.AppendUint32(w.b, v) }
func (w *wbuf) i32(v int32)  { w.u32(uint32(v)) }
func (w *wbuf) u64(v uint64) { w.b = binary.LittleEndian.AppendUint64(w.b, v) }
func (w *wbuf) i64(v int64)  { w.u64(uint64(v)) }
func (w *wbuf) bytes(v []byte) {
	w.b = append(w.b, v...)
}

// zeros appends n zero bytes.
func (w *wbuf) zeros(n int) {
	for ; n > 0; n-- {
		w.b = append(w.b, 0)
	}
}

// fixedString appends s NUL-padded (and truncated) to exactly n bytes, keeping a final NUL.
func (w *wbuf) fixedString(s string, n int) {
	if len(s) > n-1 {
		s = s[:n-1]
	}
	w.b = append(w.b, s...)
	w.zeros(n - len(s))
}

// str appends a length-prefixed string: u32 length, then the bytes, no NUL, no padding.
func (w *wbuf) str(s string) {
	w.u32(uint32(len(s)))
	w.b = append(w.b, s...)
}

// rbuf reads little-endian fields from a note descriptor. The first failure is kept in err and
// every later read returns zero, so a parser can read a whole record and check err once.
type rbuf struct {
	b    []byte
	off  int
	base int64  // Image offset of b[0], for errors.
	what string // The record being read, for errors.
	err  error
}

func (r *rbuf) fail(format string, args ...any) {
	if r.err == nil {
		r.err = formatErrorf(r.base+int64(r.off), "%s: %s", r.what, fmt.Sprintf(format, args...))
	}
}

func (r *rbuf) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.fail("descriptor too short: need %d more bytes, have %d", n, len(r.b)-r.off)
		return nil
	}
	v := r.b[r.off : r.off+n]
	r.off += n
	return v
}

func (r *rbuf) u8() uint8 {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *rbuf) u16() uint16 {
	if v := r.take(2); v != nil {
		return binary.LittleEndian.Uint16(v)
	}
	return 0
}

func (r *rbuf) u32() uint32 {
	if v := r.take(4); v != nil {
		return binary.LittleEndian.Uint32(v)
	}
	return 0
}

func (r *rbuf) i32() int32 { return int32(r.u32()) }

func (r *rbuf) u64() uint64 {
	if v := r.take(8); v != nil {
		return binary.LittleEndian.Uint64(v)
	}
	return 0
}

func (r *rbuf) i64() int64 { return int64(r.u64()) }

// skip consumes n bytes without looking at them.
func (r *rbuf) skip(n int) { r.take(n) }

// zero consumes n bytes that must all be zero (reserved fields).
func (r *rbuf) zero(n int, field string) {
	for _, c := range r.take(n) {
		if c != 0 {
			r.fail("reserved field %s is not zero", field)
			return
		}
	}
}

// str reads a length-prefixed string of at most max bytes, containing no NUL.
func (r *rbuf) str(field string, max int) string {
	n := r.u32()
	if r.err != nil {
		return ""
	}
	if uint64(n) > uint64(max) {
		r.fail("%s length %d exceeds %d", field, n, max)
		return ""
	}
	v := r.take(int(n))
	for _, c := range v {
		if c == 0 {
			r.fail("%s contains a NUL byte", field)
			return ""
		}
	}
	return string(v)
}

// fixedString reads an n-byte NUL-padded field: a string of at most n-1 bytes, then zeros.
func (r *rbuf) fixedString(n int) string {
	v := r.take(n)
	for i, c := range v {
		if c == 0 {
			for _, d := range v[i:] {
				if d != 0 {
					r.fail("bytes after the NUL of a %d-byte string field are not zero", n)
					return ""
				}
			}
			return string(v[:i])
		}
	}
	if r.err == nil {
		r.fail("%d-byte string field is not NUL-terminated", n)
	}
	return ""
}

// end checks the whole descriptor was consumed.
func (r *rbuf) end() error {
	if r.err == nil && r.off != len(r.b) {
		r.fail("%d unexpected trailing bytes", len(r.b)-r.off)
	}
	return r.err
}
