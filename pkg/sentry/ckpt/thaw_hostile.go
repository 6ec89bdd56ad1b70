package ckpt

import (
	"fmt"
	"math"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/vfsfh"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/sentry/arch/fpu"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/limits"
)

// Checks of values an image controls that the codec accepts but a thaw must refuse before it
// commits (issue 13, docs/security.md): each would otherwise block the thaw, or fail or misbehave
// after the point of no return. They run in prepareThaw, before anything is reopened.

// checkHostile returns an EINVAL error (errInvalidImage) for an image whose values no freeze
// writes: a mapping stored by reference or an executable that is not a regular file, an fd whose
// file handle has another file type than its kind says (a "regular file" handle naming a FIFO would
// be reopened as a FIFO, which can block).
func checkHostile(p *imgfmt.Process) error {
	if err := checkThreadRegs(p); err != nil { // thaw_hostile_regs.go
		return err
	}
	if exe := p.VM.Exe; exe != nil && exe.Path != "" && vfsfh.FromImage(exe).Type() != vfsfh.ModeRegular {
		return invalidf("the executable %q has file type %#o, not a regular file", exe.Path, vfsfh.FromImage(exe).Type())
	}
	for i := range p.Mappings {
		m := &p.Mappings[i]
		if m.Kind != imgfmt.MapReference || m.File == nil {
			continue
		}
		switch typ := vfsfh.FromImage(m.File).Type(); typ {
		case vfsfh.ModeRegular, vfsfh.ModeCharDev, vfsfh.ModeBlockDev:
		default:
			return invalidf("mapping %d [%#x, %#x) is stored by reference to %q of file type %#o, which cannot be mapped", i, m.Start, m.End, m.File.Path, typ)
		}
	}
	for i := range p.Files {
		f := &p.Files[i]
		if f.Handle == nil || f.IsImage {
			continue
		}
		if o, _ := p.ObjectOf(f.FD); o != nil {
			continue
		}
		if want, ok := kindModes[f.Kind]; ok && vfsfh.FromImage(f.Handle).Type() != want {
			return invalidf("fd %d: a file of kind %d has a handle of file type %#o", f.FD, f.Kind, vfsfh.FromImage(f.Handle).Type())
		}
	}
	return nil
}

// kindModes is the file type of each fd kind that is reopened by path (freeze_capture_files.go).
var kindModes = map[imgfmt.FileKind]uint32{
	imgfmt.FileRegular:   vfsfh.ModeRegular,
	imgfmt.FileDirectory: vfsfh.ModeDir,
	imgfmt.FileCharDev:   vfsfh.ModeCharDev,
	imgfmt.FileBlockDev:  vfsfh.ModeBlockDev,
	imgfmt.FileFIFO:      vfsfh.ModeFIFO,
	imgfmt.FileSymlink:   vfsfh.ModeSymlink,
}

// maxItimerNano bounds an interval timer's value and interval (about 146 years): the sentry adds
// the value to the clock's current time, and INT64_MAX overflowed there after the commit.
const maxItimerNano = math.MaxInt64 / 2

// checkCommitValues refuses values the commit would fail to apply (EINVAL, errInvalidImage): a
// brk whose heap cannot be created where it must be (over the vDSO the thaw moves to the image's
// place, over systrap's [usertrap] table, outside the user range), or bigger than RLIMIT_AS allows
// next to the vDSO; an interval timer beyond maxItimerNano; an XSAVE area the sentry's
// rt_sigreturn would refuse (features this CPU or the sentry do not support).
func checkCommitValues(t *kernel.Task, p *imgfmt.Process) error {
	vm := &p.VM
	if vm.BrkEnd > vm.BrkStart {
		start, ok1 := hostarch.Addr(vm.BrkStart).RoundUp()
		end, ok2 := hostarch.Addr(vm.BrkEnd).RoundUp()
		if !ok1 || !ok2 {
			return invalidf("brk [%#x, %#x) overflows", vm.BrkStart, vm.BrkEnd)
		}
		if start < end {
			heap := hostarch.AddrRange{Start: start, End: end}
			if heap.Overlaps(vdsoRange(vm.VDSOBase)) {
				return invalidf("brk [%#x, %#x) overlaps the vvar/vDSO at %#x", vm.BrkStart, vm.BrkEnd, vm.VDSOBase)
			}
			for _, v := range listVMAs(t) {
				if v.path == nameUsertrap && heap.Overlaps(v.ar()) {
					return invalidf("brk [%#x, %#x) overlaps the platform's %s table", vm.BrkStart, vm.BrkEnd, nameUsertrap)
				}
			}
			if as := t.ThreadGroup().Limits().Get(limits.AS).Cur; as != limits.Infinity && uint64(heap.Length())+vdsoSize()+hostarch.PageSize > as {
				return fmt.Errorf("the image's brk spans %d bytes, RLIMIT_AS is %d: %w", heap.Length(), as, linuxerr.ENOMEM)
			}
		}
	}
	for id, it := range p.Signals.Itimers {
		if it.ValueNano < 0 || it.ValueNano > maxItimerNano || it.IntervalNano < 0 || it.IntervalNano > maxItimerNano {
			return invalidf("itimer %d: value %d ns, interval %d ns (at most %d)", id, it.ValueNano, it.IntervalNano, int64(maxItimerNano))
		}
	}
	fs := t.Kernel().FeatureSet()
	for i := range p.Threads {
		xs := p.Threads[i].XState
		if len(xs) == 0 {
			continue
		}
		// SanitizeUser is what rt_sigreturn runs on the frame's FP image (it fails for
		// unsupported features); it changes its argument, so it gets a copy.
		st := fpu.State(append([]byte(nil), xs...))
		if err := st.SanitizeUser(fs); err != nil {
			return invalidf("thread %d: XSAVE area: %v", i, err)
		}
		if err := checkXSaveHeader(i, xs, st); err != nil {
			return err
		}
	}
	for i := range p.Threads {
		if fx := p.Threads[i].FPRegs; len(fx) != 0 {
			st := fpu.State(append([]byte(nil), fx...))
			_ = st.SanitizeUser(fs) // Only MXCSR is checked in a legacy area.
			if err := checkXSaveHeader(i, fx, st); err != nil {
				return err
			}
		}
	}
	return nil
}

// reopenFlags are the status flags of an image's fd that a thaw passes to open when it reopens the
// file: what F_GETFL reports and open honours. Others (O_TMPFILE, O_DIRECTORY, O_NOFOLLOW,
// O_CREAT, ...) describe how a file was made or looked up, not the open file; from a crafted
// image they made the open fail with errnos no caller expects (O_TMPFILE: EOPNOTSUPP).
const reopenFlags = linux.O_ACCMODE | linux.O_APPEND | linux.O_ASYNC | linux.O_DIRECT | linux.O_DSYNC |
	linux.O_SYNC | linux.O_LARGEFILE | linux.O_NOATIME | linux.O_NONBLOCK | linux.O_PATH

// Offsets in an XSAVE area (Intel SDM Vol. 1, 13.4): MXCSR in the legacy area, XCOMP_BV and the
// header's reserved bytes after XSTATE_BV.
const (
	xsaveMXCSR      = 24
	xsaveXCompBV    = 520
	xsaveHeaderEnd  = 576
	xsaveMXCSRBytes = 4
)

// checkXSaveHeader refuses (EINVAL) an FXSAVE or XSAVE area with MXCSR bits that are reserved on
// this CPU, a non-zero XCOMP_BV (the compacted format, which no freeze writes) or non-zero reserved
// header bytes: what Linux's PTRACE_SETREGSET refuses. rt_sigreturn, through which a thaw loads the
// area, silently clears them (sanitized is the copy SanitizeUser has run on).
func checkXSaveHeader(thread int, area []byte, sanitized []byte) error {
	if len(area) >= xsaveMXCSR+xsaveMXCSRBytes && string(area[xsaveMXCSR:xsaveMXCSR+xsaveMXCSRBytes]) != string(sanitized[xsaveMXCSR:xsaveMXCSR+xsaveMXCSRBytes]) {
		return invalidf("thread %d: MXCSR %x has reserved bits set", thread, area[xsaveMXCSR:xsaveMXCSR+xsaveMXCSRBytes])
	}
	if len(area) >= xsaveHeaderEnd {
		for _, b := range area[xsaveXCompBV:xsaveHeaderEnd] {
			if b != 0 {
				return invalidf("thread %d: XSAVE header: XCOMP_BV or reserved bytes are not zero", thread)
			}
		}
	}
	return nil
}
