package ckpt

import (
	"errors"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
)

func TestCheckThreadRegs(t *testing.T) {
	good := imgfmt.Regs{Rip: 0x401000, Cs: userCS, Ss: userDS, Eflags: 0x246 | 1<<18 | 1<<21 | 1<<16 | 1<<8 | 1<<10}
	if err := checkThreadRegs(&imgfmt.Process{Threads: []imgfmt.Thread{{Regs: good}}}); err != nil {
		t.Errorf("registers a freeze writes refused: %v", err)
	}
	for name, change := range map[string]func(r *imgfmt.Regs){
		"kernel rip":       func(r *imgfmt.Regs) { r.Rip = 0xffffffff81000000 },
		"non-canonical":    func(r *imgfmt.Regs) { r.Rip = 1 << 47 },
		"32-bit cs":        func(r *imgfmt.Regs) { r.Cs = 0x23 },
		"kernel cs":        func(r *imgfmt.Regs) { r.Cs = 0x10 },
		"ss":               func(r *imgfmt.Regs) { r.Ss = 0x18 },
		"ds":               func(r *imgfmt.Regs) { r.Ds = 0x10 },
		"gs":               func(r *imgfmt.Regs) { r.Gs = 0x63 },
		"iopl":             func(r *imgfmt.Regs) { r.Eflags |= 3 << 12 },
		"vm86":             func(r *imgfmt.Regs) { r.Eflags |= 1 << 17 },
		"nt":               func(r *imgfmt.Regs) { r.Eflags |= 1 << 14 },
		"reserved eflags":  func(r *imgfmt.Regs) { r.Eflags |= 1 << 40 },
		"reserved eflags3": func(r *imgfmt.Regs) { r.Eflags |= 1 << 3 },
	} {
		r := good
		change(&r)
		err := checkThreadRegs(&imgfmt.Process{Threads: []imgfmt.Thread{{Regs: good}, {Regs: r}}})
		if !errors.Is(err, errInvalidImage) {
			t.Errorf("%s: err = %v, want errInvalidImage", name, err)
		}
	}
}

func TestCheckXSaveHeader(t *testing.T) {
	area := make([]byte, 2432)
	area[24], area[25] = 0x80, 0x1f // MXCSR 0x1f80
	if err := checkXSaveHeader(0, area, area); err != nil {
		t.Errorf("a clean area refused: %v", err)
	}
	sanitized := append([]byte(nil), area...)
	dirty := append([]byte(nil), area...)
	dirty[27] = 0xff // Reserved MXCSR bits: SanitizeUser would clear them.
	if err := checkXSaveHeader(0, dirty, sanitized); !errors.Is(err, errInvalidImage) {
		t.Errorf("reserved MXCSR bits: err = %v", err)
	}
	for _, off := range []int{520, 527, 528, 575} {
		dirty := append([]byte(nil), area...)
		dirty[off] = 1
		if err := checkXSaveHeader(0, dirty, dirty); !errors.Is(err, errInvalidImage) {
			t.Errorf("byte %d of the header set: err = %v", off, err)
		}
	}
	if err := checkXSaveHeader(0, area[:512], area[:512]); err != nil {
		t.Errorf("a clean FXSAVE area refused: %v", err)
	}
}
