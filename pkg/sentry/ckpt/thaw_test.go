package ckpt

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/sentry/arch/fpu"
	"gvisor.dev/gvisor/pkg/sentry/loader/vdsodata"
)

func TestFPImageXState(t *testing.T) {
	xs := make([]byte, 2432)
	for i := range xs {
		xs[i] = byte(i % 251)
	}
	th := &imgfmt.Thread{XState: xs, FPRegs: make([]byte, 512)}
	img := fpImage(th, 0xe7)
	if len(img) != len(xs)+4 {
		t.Fatalf("len = %d, want %d", len(img), len(xs)+4)
	}
	var sw fpu.FPSoftwareFrame
	sw.UnmarshalUnsafe(img[fpu.FP_SW_FRAME_OFFSET:])
	want := fpu.FPSoftwareFrame{Magic1: fpu.FP_XSTATE_MAGIC1, ExtendedSize: uint32(len(xs) + 4), Xfeatures: fpu.XFEATURE_MASK_FPSSE | 0xe7, XstateSize: uint32(len(xs))}
	if sw != want {
		t.Errorf("software frame = %+v, want %+v", sw, want)
	}
	if m2 := binary.LittleEndian.Uint32(img[len(xs):]); m2 != fpu.FP_XSTATE_MAGIC2 {
		t.Errorf("magic2 = %#x", m2)
	}
	for i := range xs {
		if i >= fpu.FP_SW_FRAME_OFFSET && i < fpu.FP_SW_FRAME_OFFSET+sw.SizeBytes() {
			continue
		}
		if img[i] != xs[i] {
			t.Fatalf("byte %d = %#x, want the XSAVE image's %#x", i, img[i], xs[i])
		}
	}
	if xs[fpu.FP_SW_FRAME_OFFSET] != byte(fpu.FP_SW_FRAME_OFFSET%251) {
		t.Error("fpImage modified the thread's XState in place")
	}
}

func TestFPImageFXSaveOnlyAndNone(t *testing.T) {
	img := fpImage(&imgfmt.Thread{FPRegs: make([]byte, 512)}, 0)
	if len(img) != 516 {
		t.Fatalf("len = %d, want 516", len(img))
	}
	var sw fpu.FPSoftwareFrame
	sw.UnmarshalUnsafe(img[fpu.FP_SW_FRAME_OFFSET:])
	if sw.XstateSize != 512 || sw.ExtendedSize != 516 || sw.Magic1 != fpu.FP_XSTATE_MAGIC1 {
		t.Errorf("software frame = %+v", sw)
	}
	if fpImage(&imgfmt.Thread{}, 0) != nil {
		t.Error("no FP state must give no fpstate (initial FP state)")
	}
}

func TestThawedRax(t *testing.T) {
	self := imgfmt.Thread{Regs: imgfmt.Regs{Rax: 0, OrigRax: uint64(SYS_checkpoint)}}
	sleeping := imgfmt.Thread{Regs: imgfmt.Regs{Rax: 35, OrigRax: 35}}
	// In user mode after an earlier sys_checkpoint: orig_rax still says 1000, rax is live data.
	computing := imgfmt.Thread{Regs: imgfmt.Regs{Rax: 0x77, OrigRax: uint64(SYS_checkpoint)}}
	for _, c := range []struct {
		name         string
		p            imgfmt.Process
		i            int
		afterSyscall bool
		want         uint64
	}{
		{"froze itself", imgfmt.Process{Threads: []imgfmt.Thread{self}}, 0, true, 1},
		{"sigckpt", imgfmt.Process{Threads: []imgfmt.Thread{self}, SigInfo: &imgfmt.SigInfo{Signo: 62}}, 0, true, 0},
		{"frozen by another process while sleeping", imgfmt.Process{Threads: []imgfmt.Thread{sleeping}}, 0, true, 35},
		{"frozen by another process while computing", imgfmt.Process{Threads: []imgfmt.Thread{computing}}, 0, true, 0x77},
		{"rax 0 but not after a syscall instruction", imgfmt.Process{Threads: []imgfmt.Thread{self}}, 0, false, 0},
		{"sibling", imgfmt.Process{Threads: []imgfmt.Thread{self, sleeping}}, 1, true, 35},
	} {
		if got := thawedRax(&c.p, c.i, 1, c.afterSyscall); got != c.want {
			t.Errorf("%s: rax = %d, want %d", c.name, got, c.want)
		}
	}
}

func TestCheckThreads(t *testing.T) {
	ok := imgfmt.Thread{XState: make([]byte, 2432), FPRegs: make([]byte, 512), Regs: imgfmt.Regs{FsBase: 0x7f0000001000}}
	bad := map[string]imgfmt.Thread{
		"huge xstate":    {XState: make([]byte, maxXStateLen+1)},
		"short xstate":   {XState: make([]byte, 512)},
		"short fxsave":   {FPRegs: make([]byte, 100)},
		"non-canonical":  {Regs: imgfmt.Regs{FsBase: 1 << 63}},
		"non-canonical2": {Regs: imgfmt.Regs{GsBase: 1 << 47}},
	}
	if err := checkThreads(&imgfmt.Process{Threads: []imgfmt.Thread{ok}}); err != nil {
		t.Errorf("good thread refused: %v", err)
	}
	for name, th := range bad {
		err := checkThreads(&imgfmt.Process{Threads: []imgfmt.Thread{ok, th}})
		if !errors.Is(err, errInvalidImage) {
			t.Errorf("%s: err = %v, want errInvalidImage", name, err)
		}
	}
}

func TestEagerContentAndPerms(t *testing.T) {
	if !eagerContent(&imgfmt.Mapping{Kind: imgfmt.MapContent, Prot: imgfmt.ProtRead}) {
		t.Error("read-only anonymous content must be copied eagerly")
	}
	for _, m := range []imgfmt.Mapping{
		{Prot: imgfmt.ProtRead | imgfmt.ProtWrite},
		{Prot: imgfmt.ProtRead, Name: "/bin/x"},
		{Prot: imgfmt.ProtRead, Name: "[stack]"},
	} {
		if eagerContent(&m) {
			t.Errorf("%+v must be mapped from the image", m)
		}
	}
	if got := perms(imgfmt.ProtRead | imgfmt.ProtExec); got != (hostarch.AccessType{Read: true, Execute: true}) {
		t.Errorf("perms(r-x) = %v", got)
	}
}

func TestVDSOGeometry(t *testing.T) {
	if vdsoSize()%hostarch.PageSize != 0 || vdsoSize() < uint64(len(vdsodata.Binary)) || vdsoSize() >= uint64(len(vdsodata.Binary))+hostarch.PageSize {
		t.Errorf("vdsoSize() = %#x for a %d-byte vDSO", vdsoSize(), len(vdsodata.Binary))
	}
	r := vdsoRange(0x7000000)
	if r.Start != 0x7000000-hostarch.PageSize || uint64(r.End) != 0x7000000+vdsoSize() {
		t.Errorf("vdsoRange = %v", r)
	}
}
