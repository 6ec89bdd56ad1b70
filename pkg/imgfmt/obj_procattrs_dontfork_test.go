package imgfmt

import (
	"bytes"
	"strings"
	"testing"
)

// dontForkProcess is attrsProcess with two MADV_DONTFORK ranges in its one mapping (the heap,
// [0x405000, 0x40a000)).
func dontForkProcess() *Process {
	p := attrsProcess()
	p.Objects[1].Body.(*ProcAttrsObject).DontFork = []AddrRange{{0x405000, 0x406000}, {0x407000, 0x409000}}
	return p
}

func TestProcAttrsDontForkRoundTrip(t *testing.T) {
	q, _ := objectRoundTrip(t, dontForkProcess())
	if d := viewOf(q).Objects[1].Detail; !strings.Contains(d, "MADV_DONTFORK [0x405000, 0x406000), MADV_DONTFORK [0x407000, 0x409000)") {
		t.Errorf("summary %q lacks the ranges", d)
	}
	// The object with only ranges (every other attribute at its default) round-trips too.
	p := objectProcess()
	p.Objects = append(p.Objects, Object{ID: 2, Body: &ProcAttrsObject{Umask: 0o22, DontFork: []AddrRange{{0x405000, 0x40a000}}}})
	objectRoundTrip(t, p)
}

func TestProcAttrsDontForkChecks(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		ranges     []AddrRange
	}{
		{"unaligned", "not page-aligned", []AddrRange{{0x405001, 0x406000}}},
		{"empty", "empty", []AddrRange{{0x405000, 0x405000}}},
		{"order", "not after the one before", []AddrRange{{0x407000, 0x408000}, {0x405000, 0x406000}}},
		{"adjacent", "not after the one before", []AddrRange{{0x405000, 0x406000}, {0x406000, 0x407000}}},
		{"unmapped", "is not mapped at 0x40a000", []AddrRange{{0x409000, 0x40b000}}},
		{"beyond", "out of range", []AddrRange{{0x405000, MaxUserAddress + PageSize}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := attrsProcess()
			p.Objects[1].Body.(*ProcAttrsObject).DontFork = tc.ranges
			wantEncodeError(t, p, tc.want)
		})
	}
	// Patched bytes: the ranges follow the one rseq registration (16 + 24 bytes).
	img := encodeToBytes(t, dontForkProcess())
	body := bytes.LastIndex(img, []byte(OwnerRunscCkpt+"\x00")) + pad4(len(OwnerRunscCkpt)+1) + objectFixedSize
	const at = 16 + 24
	for _, tc := range []struct {
		off  int
		val  byte
		want string
	}{
		{at, 0, "0 MADV_DONTFORK ranges do not fit"},
		{at, 3, "3 MADV_DONTFORK ranges do not fit"},
		{at + 4, 1, "reserved"},
		{at + 8, 1, "not page-aligned"},
		{at + 16 + 1, 0x80, "not after the one before"}, // the first range's end moves past the second's start
	} {
		b := bytes.Clone(img)
		b[body+tc.off] = tc.val
		wantDecodeError(t, b, tc.want)
	}
}
