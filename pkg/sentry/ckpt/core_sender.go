package ckpt

// The sender of a "core" signal, for a core's NT_SIGINFO.
//
// gVisor's UncaughtSignal event (core_hook.go) carries no si_code and no sender. For the signals a
// process sends with kill, tkill or tgkill (abort() is tgkill(SIGABRT), `kill -QUIT`, raise()),
// those syscalls are wrapped: when one of them succeeds in sending a "core" signal to a single
// process whose disposition for it is the default, the siginfo Linux would queue (SI_USER or
// SI_TKILL, the sender's pid and uid) is remembered for that process and signal, and a core of
// the process dying of that signal uses it. rt_sigqueueinfo, rt_tgsigqueueinfo and
// pidfd_send_signal are not wrapped for this; their signals are recorded as SI_USER from pid 0.

import (
	"sync"
	"weak"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/sentry/arch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
)

var (
	_ = wrapSyscall(unix.SYS_KILL, wrapCoreSender(func(t *kernel.Task, args arch.SyscallArguments) *kernel.Task {
		if pid := kernel.ThreadID(args[0].Int()); pid > 0 {
			return t.PIDNamespace().TaskWithID(pid)
		}
		return nil // process groups and broadcasts: not recorded
	}, 1, killInfo))
	_ = wrapSyscall(unix.SYS_TKILL, wrapCoreSender(func(t *kernel.Task, args arch.SyscallArguments) *kernel.Task {
		return t.PIDNamespace().TaskWithID(kernel.ThreadID(args[0].Int()))
	}, 1, tkillInfo))
	_ = wrapSyscall(unix.SYS_TGKILL, wrapCoreSender(func(t *kernel.Task, args arch.SyscallArguments) *kernel.Task {
		return t.PIDNamespace().TaskWithID(kernel.ThreadID(args[1].Int()))
	}, 2, tkillInfo))
)

// coreSenderKey names a process and a signal. The weak pointer lets a process that never dies of
// the signal be collected; its entry then only takes a few bytes.
type coreSenderKey struct {
	tg  weak.Pointer[kernel.ThreadGroup]
	sig linux.Signal
}

// coreSenders maps coreSenderKey to the imgfmt.SigInfo of the last such signal sent.
var coreSenders sync.Map

// wrapCoreSender returns a wrap for wrapSyscall that runs the syscall and, if it sent a "core"
// signal (argument sigArg) to the process of the task target returns, remembers info's siginfo.
func wrapCoreSender(target func(*kernel.Task, arch.SyscallArguments) *kernel.Task, sigArg int, info func(sender, receiver *kernel.Task, sig linux.Signal) *linux.SignalInfo) func(kernel.Syscall) kernel.Syscall {
	return func(s kernel.Syscall) kernel.Syscall {
		orig := s.Fn
		s.Fn = func(t *kernel.Task, sysno uintptr, args arch.SyscallArguments) (uintptr, *kernel.SyscallControl, error) {
			sig := linux.Signal(args[sigArg].Int())
			if !sig.IsValid() || linux.SignalSetOf(sig)&coreSignals == 0 {
				return orig(t, sysno, args)
			}
			recv := target(t, args)
			rv, ctrl, err := orig(t, sysno, args)
			if err == nil && recv != nil {
				tg := recv.ThreadGroup()
				if act, aerr := tg.SetSigAction(sig, nil); aerr == nil && act.Handler == linux.SIG_DFL {
					si := info(t, recv, sig)
					coreSenders.Store(coreSenderKey{weak.Make(tg), sig}, imgfmt.SigInfo{
						Signo: int32(sig), Code: si.Code, PID: si.PID(), UID: uint32(si.UID()),
					})
				}
			}
			return rv, ctrl, err
		}
		return s
	}
}

// takeCoreSender returns (and forgets) the recorded sender of sig to tg, if any.
func takeCoreSender(tg *kernel.ThreadGroup, sig linux.Signal) (imgfmt.SigInfo, bool) {
	v, ok := coreSenders.LoadAndDelete(coreSenderKey{weak.Make(tg), sig})
	if !ok {
		return imgfmt.SigInfo{}, false
	}
	return v.(imgfmt.SigInfo), true
}
