package ckpt

import (
	"encoding/binary"
	"fmt"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/sentry/arch"
	"gvisor.dev/gvisor/pkg/sentry/arch/fpu"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/usermem"
)

// Registers reach the CPU through a signal frame: plain setters (PtraceSetRegs & co.) change
// t.Arch(), but on systrap the FP state is only pushed to the stub when the platform is told the
// full state changed, which only rt_sigreturn (t.SignalReturn) and execve do from outside the
// package. So thaw writes a Linux rt_sigframe tail (ucontext + siginfo, FP/XSAVE image referenced
// by uc_mcontext.fpstate) into scratch memory and lets SignalReturn load all general registers,
// rflags, the FP state, the signal mask and the alternate stack from it (docs/design.md, "Resuming a thread").

// Layout of one thread's slot in the scratch memory.
const (
	// frameSlot is the scratch space per thread: the frame at 0, the FP image at frameFPOffset.
	frameSlot = 32 << 10
	// frameFPOffset is where the FP/XSAVE image starts in a slot (64-byte aligned, as XRSTOR wants).
	frameFPOffset = 1024
	// maxXStateLen is the largest XSAVE image a slot holds (with the 4-byte FP_XSTATE_MAGIC2).
	maxXStateLen = frameSlot - frameFPOffset - 64

	// ucFlags are uc_flags as Linux sets them for an XSAVE frame: _UC_FP_XSTATE | _UC_SIGCONTEXT_SS.
	ucFlags = 1 | 2
)

// checkThreads refuses thread states no frame can carry.
func checkThreads(p *imgfmt.Process) error {
	for i := range p.Threads {
		th := &p.Threads[i]
		if len(th.XState) > maxXStateLen {
			return invalidf("thread %d: XSAVE area of %d bytes exceeds %d", i, len(th.XState), maxXStateLen)
		}
		if len(th.XState) != 0 && len(th.XState) < fpu.FXSAVE_AREA_SIZE+64 {
			return invalidf("thread %d: XSAVE area of %d bytes is shorter than legacy area and header", i, len(th.XState))
		}
		if len(th.FPRegs) != 0 && len(th.FPRegs) != fpu.FXSAVE_AREA_SIZE {
			return invalidf("thread %d: FXSAVE area of %d bytes, want %d", i, len(th.FPRegs), fpu.FXSAVE_AREA_SIZE)
		}
		if !validSegmentBase(th.Regs.FsBase) || !validSegmentBase(th.Regs.GsBase) {
			return invalidf("thread %d: fs_base %#x or gs_base %#x is not canonical", i, th.Regs.FsBase, th.Regs.GsBase)
		}
	}
	return nil
}

// validSegmentBase reports whether v is a canonical user address (as arch.SetTLS demands).
func validSegmentBase(v uint64) bool {
	return v < 1<<47
}

// writeFrame writes th's rt_sigframe tail into the slot at slot and returns the address the stack
// pointer must have for rt_sigreturn. rax replaces th.Regs.Rax (the thawed syscall's result).
//
// Preconditions: running on t's task goroutine; [slot, slot+frameSlot) is mapped read/write.
func writeFrame(t *kernel.Task, slot hostarch.Addr, th *imgfmt.Thread, rax uint64) (hostarch.Addr, error) {
	r := &th.Regs
	uc := arch.UContext64{
		Flags: ucFlags,
		Stack: linux.SignalStack{Addr: th.AltStack.Addr, Flags: uint32(th.AltStack.Flags) & linux.SS_DISABLE, Size: th.AltStack.Size},
		MContext: arch.SignalContext64{
			R8: r.R8, R9: r.R9, R10: r.R10, R11: r.R11, R12: r.R12, R13: r.R13, R14: r.R14, R15: r.R15,
			Rdi: r.Rdi, Rsi: r.Rsi, Rbp: r.Rbp, Rbx: r.Rbx, Rdx: r.Rdx, Rax: rax, Rcx: r.Rcx,
			Rsp: r.Rsp, Rip: r.Rip, Eflags: r.Eflags, Cs: uint16(r.Cs), Ss: uint16(r.Ss),
			Oldmask: linux.SignalSet(th.SigMask),
		},
		Sigset: linux.SignalSet(th.SigMask),
	}
	if fp := fpImage(th, t.Kernel().FeatureSet().ValidXCR0Mask()); fp != nil {
		fpAddr := slot + frameFPOffset
		if _, err := t.MemoryManager().CopyOut(t, fpAddr, fp, usermem.IOOpts{}); err != nil {
			return 0, fmt.Errorf("writing the FP image: %w", err)
		}
		uc.MContext.Fpstate = uint64(fpAddr)
	}
	buf := make([]byte, uc.SizeBytes()+(&linux.SignalInfo{}).SizeBytes())
	uc.MarshalUnsafe(buf) // The siginfo that follows stays zero.
	if _, err := t.MemoryManager().CopyOut(t, slot, buf, usermem.IOOpts{}); err != nil {
		return 0, fmt.Errorf("writing the signal frame: %w", err)
	}
	return slot, nil
}

// fpImage returns th's FP state as a signal frame's fpstate: the XSAVE (or FXSAVE) image with the
// software-reserved bytes 464..511 describing it (xcr0 is the sentry's valid XCR0 mask) and
// FP_XSTATE_MAGIC2 after it, or nil when the image holds no FP state (then the thread starts with
// the initial FP state).
func fpImage(th *imgfmt.Thread, xcr0 uint64) []byte {
	var xs []byte
	switch {
	case len(th.XState) != 0:
		xs = th.XState
	case len(th.FPRegs) != 0:
		xs = th.FPRegs
	default:
		return nil
	}
	img := make([]byte, len(xs)+fpu.FP_XSTATE_MAGIC2_SIZE)
	copy(img, xs)
	sw := fpu.FPSoftwareFrame{
		Magic1:       fpu.FP_XSTATE_MAGIC1,
		ExtendedSize: uint32(len(img)),
		Xfeatures:    fpu.XFEATURE_MASK_FPSSE | xcr0,
		XstateSize:   uint32(len(xs)),
	}
	// NT_X86_XSTATE carries XCR0 in these bytes; the signal frame carries the software frame.
	sw.MarshalUnsafe(img[fpu.FP_SW_FRAME_OFFSET : fpu.FP_SW_FRAME_OFFSET+sw.SizeBytes()])
	binary.LittleEndian.PutUint32(img[len(xs):], fpu.FP_XSTATE_MAGIC2)
	return img
}

// resumeFromFrame makes t continue as thread th: fs/gs base (not part of a signal frame) are set
// directly, everything else comes from the frame written at slot by SignalReturn.
//
// Preconditions: running on t's task goroutine, in task work before t returns to user mode (thaw's
// commit); inside a syscall the returned control must be the syscall's (it tells the task not to
// overwrite rax with the syscall's return value).
func resumeFromFrame(t *kernel.Task, slot hostarch.Addr, th *imgfmt.Thread, rax uint64) (*kernel.SyscallControl, error) {
	sp, err := writeFrame(t, slot, th, rax)
	if err != nil {
		return nil, err
	}
	ac := t.Arch()
	ac.SetTLS(uintptr(th.Regs.FsBase))
	ac.Regs.Gs_base = th.Regs.GsBase
	ac.SetStack(uintptr(sp))
	ctrl, err := t.SignalReturn(true)
	if err != nil {
		return nil, fmt.Errorf("rt_sigreturn from the thaw frame: %w", err)
	}
	return ctrl, nil
}

// thawedRax is the value thread i's rax must hold after thaw: the thaw's retval for the thread
// that froze itself with sys_checkpoint (so its call returns retval), the frozen value otherwise
// (a thread stopped anywhere else, e.g. by SIGCKPT or by another process's freeze, must not see
// its rax change). The image does not say which it was; a self-freeze is recognised by what
// freeze records for it: thread 0, no triggering signal, orig_rax = SYS_checkpoint, rax = 0 (the
// result the running process got) and rip right after a syscall instruction (afterSyscall, read
// from the thawed memory by the caller). A thread stopped in user mode only matches if it had
// just returned 0 from sys_checkpoint and not run another instruction.
func thawedRax(p *imgfmt.Process, i int, retval uintptr, afterSyscall bool) uint64 {
	th := &p.Threads[i]
	if i == 0 && p.SigInfo == nil && th.Regs.OrigRax == uint64(SYS_checkpoint) && th.Regs.Rax == 0 && afterSyscall {
		return uint64(retval)
	}
	return th.Regs.Rax
}

// afterSyscallInsn reports whether the two bytes before rip in t's memory are a syscall
// instruction (0f 05).
func afterSyscallInsn(t *kernel.Task, rip uint64) bool {
	var b [2]byte
	if rip < 2 {
		return false
	}
	if _, err := t.MemoryManager().CopyIn(t, hostarch.Addr(rip-2), b[:], usermem.IOOpts{IgnorePermissions: true}); err != nil {
		return false
	}
	return b == [2]byte{0x0f, 0x05}
}
