package ckpt

// Wrappers of kill(2), tkill(2) and tgkill(2) for checkpoint signals. Each resolves targets and
// checks permissions in the order of gVisor's own implementation (syscalls/linux/sys_signal.go),
// and leaves every error case and every target that does not take the checkpoint default action
// to the original code path, so that return values and errnos stay those of the original syscall.

import (
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/arch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

var (
	_ = wrapSyscall(unix.SYS_KILL, wrapSignalSyscall(1, ckptKill))
	_ = wrapSyscall(unix.SYS_TKILL, wrapSignalSyscall(1, ckptTkill))
	_ = wrapSyscall(unix.SYS_TGKILL, wrapSignalSyscall(2, ckptTgkill))
)

// ckptSyscall handles a signal-sending syscall whose signal is a checkpoint signal under p. orig is
// the original implementation, to which it defers wherever the checkpoint does not apply.
type ckptSyscall func(t *kernel.Task, p Policy, sig linux.Signal, sysno uintptr, args arch.SyscallArguments, orig kernel.SyscallFn) (uintptr, *kernel.SyscallControl, error)

// wrapSignalSyscall returns a wrap for wrapSyscall: the wrapped syscall reads its signal number
// from argument sigArg and calls handle for checkpoint signals, the original otherwise.
func wrapSignalSyscall(sigArg int, handle ckptSyscall) func(kernel.Syscall) kernel.Syscall {
	return func(s kernel.Syscall) kernel.Syscall {
		orig := s.Fn
		s.Fn = func(t *kernel.Task, sysno uintptr, args arch.SyscallArguments) (uintptr, *kernel.SyscallControl, error) {
			sig := linux.Signal(args[sigArg].Int())
			p := CurrentPolicy()
			if ckptActionOf(p, sig) == noCkpt {
				return orig(t, sysno, args)
			}
			return handle(t, p, sig, sysno, args, orig)
		}
		return s
	}
}

// killInfo returns the siginfo kill(2) sends from sender to the process of receiver.
func killInfo(sender, receiver *kernel.Task, sig linux.Signal) *linux.SignalInfo {
	info := &linux.SignalInfo{Signo: int32(sig), Code: linux.SI_USER}
	info.SetPID(int32(receiver.PIDNamespace().IDOfTask(sender)))
	info.SetUID(int32(sender.Credentials().RealKUID.In(receiver.UserNamespace()).OrOverflow()))
	return info
}

// tkillInfo returns the siginfo tkill(2) and tgkill(2) send from sender to receiver.
func tkillInfo(sender, receiver *kernel.Task, sig linux.Signal) *linux.SignalInfo {
	info := &linux.SignalInfo{Signo: int32(sig), Code: linux.SI_TKILL}
	info.SetPID(int32(receiver.PIDNamespace().IDOfThreadGroup(sender.ThreadGroup())))
	info.SetUID(int32(sender.Credentials().RealKUID.In(receiver.UserNamespace()).OrOverflow()))
	return info
}

// ckptKill is kill(pid, sig) for a checkpoint signal: pid > 0 one process, pid == -1 every
// process the caller may signal except itself and init, pid == 0 the caller's process group,
// pid < -1 process group -pid.
func ckptKill(t *kernel.Task, p Policy, sig linux.Signal, sysno uintptr, args arch.SyscallArguments, orig kernel.SyscallFn) (uintptr, *kernel.SyscallControl, error) {
	pid := kernel.ThreadID(args[0].Int())
	if pid > 0 {
		target := t.PIDNamespace().TaskWithID(pid)
		if target == nil || !t.MayKill(target, sig) {
			return orig(t, sysno, args) // ESRCH, EPERM
		}
		tg := target.ThreadGroup()
		return deliverOne(t, p, tg, sig, func() error {
			return ckptProcess(p, tg, target, sig, killInfo(t, target, sig))
		}, sysno, args, orig)
	}

	// Several processes: decide for each, as the original would select them.
	targets, err := killTargets(t, pid, sig)
	if err != nil {
		return orig(t, sysno, args)
	}
	anyCkpt := false
	for i := range targets {
		if targets[i].permitted {
			targets[i].decision, targets[i].policyErr = decide(t, p, targets[i].tg, sig)
			anyCkpt = anyCkpt || targets[i].decision == deliverCkpt
		}
	}
	if !anyCkpt {
		return orig(t, sysno, args)
	}
	if pid == -1 {
		return 0, nil, killAll(t, p, sig, targets)
	}
	return 0, nil, killGroup(t, p, sig, targets)
}

// killTarget is one process selected by kill(pid <= 0, sig).
type killTarget struct {
	tg *kernel.ThreadGroup
	// permitted reports whether the caller may signal the process (Task.MayKill on its leader).
	permitted bool
	// decision and policyErr are decide's result for a permitted target.
	decision  ckptDecision
	policyErr error
}

// killTargets returns the processes that kill(pid, sig) with pid <= 0 addresses, in the order
// the original visits them. pid == -1 skips the caller and the pid namespace's init.
func killTargets(t *kernel.Task, pid kernel.ThreadID, sig linux.Signal) ([]killTarget, error) {
	ns := t.PIDNamespace()
	var pgid kernel.ProcessGroupID
	if pid != -1 {
		pgid = kernel.ProcessGroupID(-pid)
		if pgid == 0 {
			pgid = ns.IDOfProcessGroup(t.ThreadGroup().ProcessGroup())
		}
	}
	var out []killTarget
	for _, tg := range ns.ThreadGroups() {
		if pid == -1 {
			if tg == t.ThreadGroup() || tg.IsInitIn(ns) {
				continue
			}
		} else if ns.IDOfProcessGroup(tg.ProcessGroup()) != pgid {
			continue
		}
		leader := tg.Leader()
		if leader == nil {
			return nil, linuxerr.ESRCH
		}
		out = append(out, killTarget{tg: tg, permitted: t.MayKill(leader, sig)})
	}
	return out, nil
}

// killAll delivers kill(-1, sig) to targets. Like the original it returns ESRCH if no process
// was signalled, else the last error other than a permission failure.
func killAll(t *kernel.Task, p Policy, sig linux.Signal, targets []killTarget) error {
	var lastErr error
	delivered := 0
	for _, k := range targets {
		if !k.permitted || k.policyErr != nil {
			continue // Permission failures are not reported for pid == -1.
		}
		err := deliverToProcess(t, p, sig, k)
		if linuxerr.Equals(linuxerr.ESRCH, err) {
			continue // Exited while we were iterating.
		}
		delivered++
		if err != nil {
			lastErr = err
		}
	}
	if delivered == 0 {
		return linuxerr.ESRCH
	}
	return lastErr
}

// killGroup delivers kill(-pgid, sig) to targets. Like the original it returns the last error,
// EPERM for a process the caller may not signal, and ESRCH if the group is empty.
func killGroup(t *kernel.Task, p Policy, sig linux.Signal, targets []killTarget) error {
	lastErr := error(linuxerr.ESRCH)
	for _, k := range targets {
		if !k.permitted {
			lastErr = linuxerr.EPERM
			continue
		}
		if k.policyErr != nil {
			lastErr = k.policyErr
			continue
		}
		if err := deliverToProcess(t, p, sig, k); !linuxerr.Equals(linuxerr.ESRCH, err) {
			lastErr = err
		}
	}
	return lastErr
}

// deliverToProcess delivers a process-directed sig to one permitted target of kill, by the
// checkpoint default action or as an ordinary signal.
func deliverToProcess(t *kernel.Task, p Policy, sig linux.Signal, k killTarget) error {
	leader := k.tg.Leader()
	if leader == nil {
		return linuxerr.ESRCH
	}
	info := killInfo(t, leader, sig)
	if k.decision == deliverCkpt {
		if err := ckptProcess(p, k.tg, nil, sig, info); err == nil {
			return nil
		}
		// No live thread (a zombie): what the original does with it is what happens.
	}
	return k.tg.SendSignal(info)
}

// ckptTkill is tkill(tid, sig) for a checkpoint signal.
func ckptTkill(t *kernel.Task, p Policy, sig linux.Signal, sysno uintptr, args arch.SyscallArguments, orig kernel.SyscallFn) (uintptr, *kernel.SyscallControl, error) {
	tid := kernel.ThreadID(args[0].Int())
	if tid <= 0 {
		return orig(t, sysno, args) // EINVAL
	}
	return ckptToThread(t, p, sig, t.PIDNamespace().TaskWithID(tid), sysno, args, orig)
}

// ckptTgkill is tgkill(tgid, tid, sig) for a checkpoint signal.
func ckptTgkill(t *kernel.Task, p Policy, sig linux.Signal, sysno uintptr, args arch.SyscallArguments, orig kernel.SyscallFn) (uintptr, *kernel.SyscallControl, error) {
	tgid := kernel.ThreadID(args[0].Int())
	tid := kernel.ThreadID(args[1].Int())
	if tgid <= 0 || tid <= 0 {
		return orig(t, sysno, args) // EINVAL
	}
	targetTG := t.PIDNamespace().ThreadGroupWithID(tgid)
	target := t.PIDNamespace().TaskWithID(tid)
	if targetTG == nil || target == nil || target.ThreadGroup() != targetTG {
		return orig(t, sysno, args) // ESRCH
	}
	return ckptToThread(t, p, sig, target, sysno, args, orig)
}

// ckptToThread finishes tkill and tgkill once the target thread is resolved (nil: none).
func ckptToThread(t *kernel.Task, p Policy, sig linux.Signal, target *kernel.Task, sysno uintptr, args arch.SyscallArguments, orig kernel.SyscallFn) (uintptr, *kernel.SyscallControl, error) {
	if target == nil || !t.MayKill(target, sig) {
		return orig(t, sysno, args) // ESRCH, EPERM
	}
	return deliverOne(t, p, target.ThreadGroup(), sig, func() error {
		return ckptThread(p, target, sig, tkillInfo(t, target, sig))
	}, sysno, args, orig)
}
