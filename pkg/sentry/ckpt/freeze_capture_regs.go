package ckpt

import (
	"bytes"
	"fmt"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/arch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// threadPoint says where a thread is when it captures its own state, which decides how its
// registers are fixed up so that a thaw resumes it correctly.
type threadPoint int

const (
	// inCheckpointSyscall: the thread is inside sys_checkpoint(CKPT_FREEZE). Its registers are
	// recorded as the program will see them when the call returns 0 (rax = 0, rip after the
	// syscall instruction); a thaw replaces rax by its retval.
	inCheckpointSyscall threadPoint = iota
	// atUserBoundary: the thread is about to return to user mode from task work (a sibling stopped
	// for the freeze, or a process frozen by SIGCKPT or by another process). If it was interrupted
	// inside a blocking syscall, rax holds -ERESTART*; the restart is applied to the copy, exactly
	// as runApp would apply it, so the thawed thread re-issues the syscall.
	atUserBoundary
	// atFatalSignal: the thread is delivering a signal that kills its process (a core dump). Its
	// registers are recorded as they are, as Linux's core dumps show them: rip at the faulting
	// instruction, or -ERESTART* in rax after a syscall the signal interrupted.
	atFatalSignal
)

// captureThread records the calling thread's registers, FP/XSAVE state, signal mask, pending
// signals, alternate stack and robust list.
//
// Preconditions: running on t's task goroutine (the only place where the systrap platform can be
// asked to hand over the FP state).
func captureThread(t *kernel.Task, at threadPoint) (imgfmt.Thread, error) {
	// On systrap the FP state stays in the stub until the platform pulls it; SigaltStack with both
	// addresses 0 pulls the calling task's full state and changes nothing else.
	if _, err := t.SigaltStack(0, 0); err != nil {
		return imgfmt.Thread{}, fmt.Errorf("pulling the FP state of thread %d: %w", t.ThreadID(), err)
	}
	c := t.Arch().Fork()
	switch at {
	case inCheckpointSyscall:
		c.SetReturn(0)
	case atUserBoundary:
		fixupRestart(c)
	}

	th := imgfmt.Thread{
		TID:        int32(t.ThreadGroup().PIDNamespace().IDOfTask(t)),
		Regs:       regsOf(&c.Regs.PtraceRegs),
		SigMask:    uint64(t.SignalMask()),
		SigPending: uint64(t.PendingSignals()),
		RobustList: uint64(t.GetRobustList()),
		ClearTID:   clearTIDOf(t, t.MemoryManager()),
	}
	alt := t.SignalStack()
	th.AltStack = imgfmt.AltStack{Addr: alt.Addr, Flags: int32(alt.Flags), Size: alt.Size}

	fs := t.Kernel().FeatureSet()
	var fp bytes.Buffer
	if _, err := c.PtraceGetRegSet(linux.NT_PRFPREG, &fp, fxsaveSize, fs); err != nil {
		return imgfmt.Thread{}, fmt.Errorf("reading the FP registers of thread %d: %w", t.ThreadID(), err)
	}
	th.FPRegs = fp.Bytes()
	var xs bytes.Buffer
	if _, err := c.PtraceGetRegSet(linux.NT_X86_XSTATE, &xs, maxXStateSize, fs); err != nil {
		return imgfmt.Thread{}, fmt.Errorf("reading the XSAVE state of thread %d: %w", t.ThreadID(), err)
	}
	th.XState = xs.Bytes()
	return th, nil
}

// fxsaveSize is the size of the legacy FXSAVE area (NT_PRFPREG).
const fxsaveSize = 512

// maxXStateSize bounds the XSAVE area (NT_X86_XSTATE); AVX-512 needs about 2.7 KiB.
const maxXStateSize = 64 << 10

// fixupRestart applies to c what runApp applies before returning to user mode after a syscall
// interrupted with -ERESTART*: rewind rip over the syscall instruction and put the syscall number
// back in rax. ERESTART_RESTARTBLOCK cannot be restarted after a thaw (its restart block is kernel
// state that is not saved), so the thawed syscall returns EINTR instead, as Linux does when a
// restart block is lost.
func fixupRestart(c *arch.Context64) {
	sre, ok := linuxerr.SyscallRestartErrorFromReturn(c.Return())
	if !ok {
		return
	}
	if sre == linuxerr.ERESTART_RESTARTBLOCK {
		eintr := -int64(unix.EINTR)
		c.SetReturn(uintptr(eintr))
		return
	}
	c.RestartSyscall()
}

// regsOf converts gVisor's user_regs_struct to the image's.
func regsOf(r *linux.PtraceRegs) imgfmt.Regs {
	return imgfmt.Regs{
		R15: r.R15, R14: r.R14, R13: r.R13, R12: r.R12, Rbp: r.Rbp, Rbx: r.Rbx, R11: r.R11, R10: r.R10,
		R9: r.R9, R8: r.R8, Rax: r.Rax, Rcx: r.Rcx, Rdx: r.Rdx, Rsi: r.Rsi, Rdi: r.Rdi,
		OrigRax: r.Orig_rax, Rip: r.Rip, Cs: r.Cs, Eflags: r.Eflags, Rsp: r.Rsp, Ss: r.Ss,
		FsBase: r.Fs_base, GsBase: r.Gs_base, Ds: r.Ds, Es: r.Es, Fs: r.Fs, Gs: r.Gs,
	}
}
