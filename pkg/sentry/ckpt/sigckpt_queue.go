package ckpt

// Wrappers of rt_sigqueueinfo(2) and rt_tgsigqueueinfo(2) for checkpoint signals. The siginfo is
// the caller's (its si_code, pid and uid go into the image's NT_SIGINFO); validation follows
// gVisor's implementation, and every error is left to the original syscall.

import (
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/sentry/arch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

var (
	_ = wrapSyscall(unix.SYS_RT_SIGQUEUEINFO, wrapSignalSyscall(1, ckptSigqueueinfo))
	_ = wrapSyscall(unix.SYS_RT_TGSIGQUEUEINFO, wrapSignalSyscall(2, ckptTgsigqueueinfo))
)

// mayQueueInfo reports whether sender may send info to target: a process other than the receiver
// cannot use the si_codes of the kernel (>= 0) or SI_TKILL.
func mayQueueInfo(sender, target *kernel.Task, info *linux.SignalInfo) bool {
	return (info.Code < 0 && info.Code != linux.SI_TKILL) || target == sender
}

// ckptSigqueueinfo is rt_sigqueueinfo(pid, sig, uinfo) for a checkpoint signal.
func ckptSigqueueinfo(t *kernel.Task, p Policy, sig linux.Signal, sysno uintptr, args arch.SyscallArguments, orig kernel.SyscallFn) (uintptr, *kernel.SyscallControl, error) {
	pid := kernel.ThreadID(args[0].Int())
	var info linux.SignalInfo
	if _, err := info.CopyIn(t, args[2].Pointer()); err != nil {
		return orig(t, sysno, args) // EFAULT
	}
	info.Signo = int32(sig)
	target := t.PIDNamespace().TaskWithID(pid)
	if target == nil || !mayQueueInfo(t, target, &info) || !t.MayKill(target, sig) {
		return orig(t, sysno, args) // ESRCH, EPERM
	}
	tg := target.ThreadGroup()
	return deliverOne(t, p, tg, sig, func() error {
		return ckptProcess(p, tg, target, sig, &info)
	}, sysno, args, orig)
}

// ckptTgsigqueueinfo is rt_tgsigqueueinfo(tgid, tid, sig, uinfo) for a checkpoint signal.
func ckptTgsigqueueinfo(t *kernel.Task, p Policy, sig linux.Signal, sysno uintptr, args arch.SyscallArguments, orig kernel.SyscallFn) (uintptr, *kernel.SyscallControl, error) {
	tgid := kernel.ThreadID(args[0].Int())
	tid := kernel.ThreadID(args[1].Int())
	if tgid <= 0 || tid <= 0 {
		return orig(t, sysno, args) // EINVAL
	}
	var info linux.SignalInfo
	if _, err := info.CopyIn(t, args[3].Pointer()); err != nil {
		return orig(t, sysno, args) // EFAULT
	}
	info.Signo = int32(sig)
	targetTG := t.PIDNamespace().ThreadGroupWithID(tgid)
	target := t.PIDNamespace().TaskWithID(tid)
	if targetTG == nil || target == nil || target.ThreadGroup() != targetTG ||
		!mayQueueInfo(t, target, &info) || !t.MayKill(target, sig) {
		return orig(t, sysno, args) // ESRCH, EPERM
	}
	return deliverOne(t, p, targetTG, sig, func() error {
		return ckptThread(p, target, sig, &info)
	}, sysno, args, orig)
}
