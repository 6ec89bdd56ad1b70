package ckpt

// Wrapper of pidfd_send_signal(2) for checkpoint signals. The target comes from a pidfd
// (pidfd_open, clone3 CLONE_PIDFD) or a /proc/PID directory fd; the delivery scope from flags, or
// for flags == 0 from the kind of pidfd (PIDFD_THREAD pidfds signal the thread). Validation
// follows gVisor's Task.PIDFDSendSignal; every error is left to the original syscall.

import (
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/arch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

var _ = wrapSyscall(unix.SYS_PIDFD_SEND_SIGNAL, wrapSignalSyscall(1, ckptPidfdSendSignal))

// ckptPidfdSendSignal is pidfd_send_signal(pidfd, sig, info, flags) for a checkpoint signal.
func ckptPidfdSendSignal(t *kernel.Task, p Policy, sig linux.Signal, sysno uintptr, args arch.SyscallArguments, orig kernel.SyscallFn) (uintptr, *kernel.SyscallControl, error) {
	fd := args[0].Int()
	infoAddr := args[2].Pointer()
	flags := args[3].Uint()
	switch flags {
	case 0, linux.PIDFD_SIGNAL_THREAD, linux.PIDFD_SIGNAL_THREAD_GROUP, linux.PIDFD_SIGNAL_PROCESS_GROUP:
	default:
		return orig(t, sysno, args) // EINVAL
	}
	file := t.GetFile(fd)
	if file == nil {
		return orig(t, sysno, args) // EBADF
	}
	defer file.DecRef(t)
	target, err := kernel.PIDFDTask(file)
	if err != nil {
		return orig(t, sysno, args) // ESRCH, EBADF
	}

	scope := flags
	if scope == 0 {
		scope = linux.PIDFD_SIGNAL_THREAD_GROUP
		// ThreadGroupFromPIDFD refuses a PIDFD_THREAD pidfd with EINVAL, and reports EBADF for
		// a /proc/PID fd, which signals the thread group.
		if _, _, err := t.ThreadGroupFromPIDFD(fd); linuxerr.Equals(linuxerr.EINVAL, err) {
			scope = linux.PIDFD_SIGNAL_THREAD
		}
	}

	var info *linux.SignalInfo
	if infoAddr != 0 {
		info = &linux.SignalInfo{}
		if _, err := info.CopyIn(t, infoAddr); err != nil {
			return orig(t, sysno, args) // EFAULT
		}
		if info.Signo != int32(sig) {
			return orig(t, sysno, args) // EINVAL
		}
		if !mayQueueInfo(t, target, info) || (scope == linux.PIDFD_SIGNAL_PROCESS_GROUP && (info.Code >= 0 || info.Code == linux.SI_TKILL)) {
			return orig(t, sysno, args) // EPERM
		}
	} else {
		info = killInfo(t, target, sig)
	}
	if !t.MayKill(target, sig) {
		return orig(t, sysno, args) // EPERM
	}

	tg := target.ThreadGroup()
	switch scope {
	case linux.PIDFD_SIGNAL_THREAD, linux.PIDFD_SIGNAL_THREAD_GROUP:
		return deliverOne(t, p, tg, sig, func() error {
			if scope == linux.PIDFD_SIGNAL_THREAD {
				return ckptThread(p, target, sig, info)
			}
			return ckptProcess(p, tg, target, sig, info)
		}, sysno, args, orig)
	default: // PIDFD_SIGNAL_PROCESS_GROUP
		pg := tg.ProcessGroup()
		if pg == nil || pg.Originator() != tg {
			return orig(t, sysno, args) // EINVAL
		}
		return pidfdGroup(t, p, sig, pg, info, sysno, args, orig)
	}
}

// pidfdGroup delivers sig to every process of pg, as ProcessGroup.SendSignal does (no per-process
// permission check; the last error is returned), each by the checkpoint default action or as an
// ordinary signal. If no process takes the checkpoint, the original syscall runs.
func pidfdGroup(t *kernel.Task, p Policy, sig linux.Signal, pg *kernel.ProcessGroup, info *linux.SignalInfo, sysno uintptr, args arch.SyscallArguments, orig kernel.SyscallFn) (uintptr, *kernel.SyscallControl, error) {
	type member struct {
		tg        *kernel.ThreadGroup
		decision  ckptDecision
		policyErr error
	}
	var members []member
	anyCkpt := false
	for _, tg := range t.Kernel().TaskSet().Root.ThreadGroups() {
		if tg.ProcessGroup() != pg {
			continue
		}
		d, err := decide(t, p, tg, sig)
		members = append(members, member{tg, d, err})
		anyCkpt = anyCkpt || d == deliverCkpt
	}
	if !anyCkpt {
		return orig(t, sysno, args)
	}
	var lastErr error
	for _, m := range members {
		infoCopy := *info
		var err error
		switch {
		case m.policyErr != nil:
			err = m.policyErr
		case m.decision == deliverCkpt && ckptProcess(p, m.tg, nil, sig, &infoCopy) == nil:
		default:
			// An ordinary signal, or a process without a live thread (a zombie), which gets
			// what the original would give it.
			err = m.tg.SendSignal(&infoCopy)
		}
		if err != nil {
			lastErr = err
		}
	}
	return 0, nil, lastErr
}
