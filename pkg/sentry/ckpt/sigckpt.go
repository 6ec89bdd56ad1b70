package ckpt

// SIGCKPT and SIGCKPTEXIT: signals whose default action is a checkpoint.
//
// gVisor's default signal actions are a fixed, unexported table, so a signal cannot be given a new
// default action. Instead the six syscalls that send a signal on a guest's behalf (kill, tkill,
// tgkill, rt_sigqueueinfo, rt_tgsigqueueinfo, pidfd_send_signal) are wrapped (sigckpt_*.go). For a
// checkpoint signal whose target process has the default disposition, the wrapper does not queue
// the signal: it resolves the target exactly as the original syscall would, checks the same
// permission, and registers a ckptWork on one thread of the target. That thread runs the work on
// its own task goroutine before it next returns to user mode, writes the ckpt-file image through
// freezeToCkptFile, and then continues (SIGCKPT) or exits as if killed by the signal
// (SIGCKPTEXIT). A handled or ignored checkpoint signal is an ordinary signal: the original
// syscall runs unchanged. docs/notes-sigckpt.md explains the decisions.

import (
	"sync"

	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/arch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/kernel/auth"
	"gvisor.dev/gvisor/pkg/sentry/limits"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
)

// ckptAction is what a checkpoint signal does when its disposition is the default.
type ckptAction int

const (
	// noCkpt: the signal is not a checkpoint signal under the current policy.
	noCkpt ckptAction = iota
	// ckptContinue: write the image, then let the process continue (SIGCKPT).
	ckptContinue
	// ckptExit: write the image, then terminate the process as if killed by the signal
	// (SIGCKPTEXIT).
	ckptExit
)

// ckptActionOf returns the checkpoint action of sig under p. The checkpoint signal is p.Signal
// (--ckpt-signal, SIGCKPT by default); SIGCKPTEXIT is fixed. A policy with Signal == 0 disables
// both: no signal triggers a checkpoint.
func ckptActionOf(p Policy, sig linux.Signal) ckptAction {
	switch {
	case p.Signal == 0:
		return noCkpt
	case sig == p.Signal:
		return ckptContinue
	case sig == SIGCKPTEXIT:
		return ckptExit
	default:
		return noCkpt
	}
}

// senderMayCheckpoint applies the policy's ckpt-group to the sender of a checkpoint signal: a
// signal that would cause a checkpoint is refused with EPERM when its sender could not have called
// sys_checkpoint. DragonFly checks its ckptgroup only in the syscall; we apply it to both
// triggers so that the signal is not a way around the policy.
func senderMayCheckpoint(sender *kernel.Task, p Policy) bool {
	return p.Group < 0 || sender.Credentials().InGroup(auth.KGID(p.Group))
}

// takesDefaultCkpt reports whether a checkpoint signal sent to tg runs the checkpoint default
// action: tg's disposition for sig is SIG_DFL. The signal mask does not matter (see
// chooseFreezer); a process without a live thread is found out by chooseFreezer (ESRCH), which
// hands the call back to the original syscall. (Not the leader's state: a process whose leader
// thread exited lives on in its other threads.)
func takesDefaultCkpt(tg *kernel.ThreadGroup, sig linux.Signal) bool {
	// SetSigAction with a nil action only reads the current one.
	act, err := tg.SetSigAction(sig, nil)
	return err == nil && act.Handler == linux.SIG_DFL
}

// chooseFreezer returns the thread of tg that will carry out a process-directed checkpoint signal:
// the thread Linux would pick for delivery — preferred is the one given, then any thread that does
// not block sig — falling back to the leader or any live thread when every thread blocks it.
// It returns nil if tg has no live thread.
//
// A blocked checkpoint signal is carried out at once, not deferred: gVisor offers no hook to act
// when the mask changes, and queueing the signal instead would turn a harmless checkpoint into a
// termination the moment the process unblocks it (gVisor's default action for signals 32-64).
func chooseFreezer(tg *kernel.ThreadGroup, preferred *kernel.Task, sig linux.Signal) *kernel.Task {
	var unblocked, alive *kernel.Task
	// ForEachTask holds the TaskSet lock: take the leader first, Leader takes it too.
	leader := tg.Leader()
	tg.ForEachTask(func(t *kernel.Task) bool {
		if t.ExitState() != kernel.TaskExitNone {
			return true
		}
		if alive == nil || t == leader {
			alive = t
		}
		if t.SignalMask()&linux.SignalSetOf(sig) == 0 {
			if unblocked == nil || t == preferred {
				unblocked = t
			}
		}
		return true
	})
	if unblocked != nil {
		return unblocked
	}
	return alive
}

// ckptInFlight maps each thread group that has a checkpoint signal pending or being carried out
// to the thread that will carry it out. Like a standard signal, a second checkpoint signal for a
// process that already has one pending is merged into it — this also keeps two threads of one
// process from freezing it concurrently. queueCkpt adds an entry, ckptWork.TaskWork removes it when
// the freeze is over; an entry whose thread exited before running its work is replaced by the next
// signal, so a vanished thread cannot block later checkpoints. A package-level map because gVisor
// has no exported per-ThreadGroup storage for extensions; one sentry serves one sandbox.
var ckptInFlight sync.Map // map[*kernel.ThreadGroup]*kernel.Task

// ckptWork is a checkpoint signal's default action, run on the chosen thread's task goroutine.
type ckptWork struct {
	// sig is the checkpoint signal, recorded for the exit status of SIGCKPTEXIT.
	sig linux.Signal
	// action is ckptContinue or ckptExit.
	action ckptAction
	// info is the signal as recorded in the image's NT_SIGINFO.
	info imgfmt.SigInfo
}

// TaskWork implements kernel.TaskWorker.TaskWork. It writes the process's ckpt-file image and, for
// SIGCKPTEXIT, terminates the process as if killed by the signal (wait status: signaled, WTERMSIG
// == SIGCKPTEXIT, no core). If the freeze fails, the process keeps running whatever the signal:
// exiting without the image would throw the process's work away; the failure is logged.
//
// Preconditions: running on t's task goroutine, on the way back to user mode.
func (w *ckptWork) TaskWork(t *kernel.Task) {
	defer ckptInFlight.CompareAndDelete(t.ThreadGroup(), t)
	if t.ExitState() != kernel.TaskExitNone {
		return
	}
	info := w.info
	err := ckptAllowed(t)
	if err == nil {
		// SIGCKPTEXIT keeps the process stopped until its image is written: no code of it runs
		// after the snapshot, its exit is seen only once the image is complete, and a failed
		// image leaves it running.
		err = freezeToCkptFile(t, &info, w.action == ckptContinue)
	}
	if err != nil {
		t.Warningf("runsc-ckpt: signal %d: checkpoint of pid %d failed, process continues: %v", w.sig, t.ThreadGroup().ID(), err)
		return
	}
	t.Infof("runsc-ckpt: signal %d: checkpoint of pid %d taken", w.sig, t.ThreadGroup().ID())
	if w.action == ckptExit {
		// PrepareGroupExit records the status and kills the other threads; t itself is made to
		// leave by a SIGKILL, whose delivery finds the group already exiting and keeps the
		// status set here (compare Task.prepareGroupExitLocked).
		t.PrepareGroupExit(linux.WaitStatusTerminationSignal(w.sig))
		if err := t.SendSignal(kernel.SignalInfoPriv(linux.SIGKILL)); err != nil {
			t.Warningf("runsc-ckpt: signal %d: cannot terminate pid %d after its checkpoint: %v", w.sig, t.ThreadGroup().ID(), err)
		}
	}
}

// ckptAllowed applies DragonFly's checks of a signal checkpoint to t's own process: a set-id
// (non-dumpable) process is not checkpointed (EPERM), nor one whose RLIMIT_CORE is 0 (ERANGE).
//
// Preconditions: running on t's task goroutine.
func ckptAllowed(t *kernel.Task) error {
	if err := checkDumpable(t, t); err != nil {
		return err
	}
	if t.ThreadGroup().Limits().Get(limits.Core).Cur == 0 {
		return linuxerr.ERANGE
	}
	return nil
}

// queueCkpt registers the checkpoint default action of sig on freezer and interrupts it so that it
// runs the work soon even if it is blocked in a syscall (the syscall is restarted afterwards, as
// after a stop). It is a no-op if the process already has a checkpoint signal in flight.
// Thread-directed signals (tkill) are merged per process too: a freeze captures every thread.
func queueCkpt(freezer *kernel.Task, sig linux.Signal, action ckptAction, info *linux.SignalInfo) {
	tg := freezer.ThreadGroup()
	if prev, busy := ckptInFlight.LoadOrStore(tg, freezer); busy {
		if prev.(*kernel.Task).ExitState() == kernel.TaskExitNone {
			return // Merged into the pending one.
		}
		if !ckptInFlight.CompareAndSwap(tg, prev, freezer) {
			return // Another sender replaced the dead entry first.
		}
	}
	// On the sender's goroutine, before the target is stopped (see warmSnapshot).
	warmSnapshot(freezer.Kernel(), 1)
	freezer.RegisterWork(&ckptWork{
		sig:    sig,
		action: action,
		info: imgfmt.SigInfo{
			Signo: int32(sig),
			Errno: info.Errno,
			Code:  info.Code,
			PID:   info.PID(),
			UID:   uint32(info.UID()),
		},
	})
	// The only exported way to interrupt another task: a stop that ends at once.
	freezer.BeginExternalStop()
	freezer.EndExternalStop()
}

// ckptDecision is the outcome of checking one target of a checkpoint signal.
type ckptDecision int

const (
	// deliverOrdinary: not a checkpoint (handled, ignored, or not a checkpoint signal); the
	// signal is delivered as usual.
	deliverOrdinary ckptDecision = iota
	// deliverCkpt: the target takes the checkpoint default action.
	deliverCkpt
)

// decide returns how sig sent by sender to the process tg is delivered under p, and the error
// (EPERM) when the sender may signal the process but not checkpoint it.
func decide(sender *kernel.Task, p Policy, tg *kernel.ThreadGroup, sig linux.Signal) (ckptDecision, error) {
	if ckptActionOf(p, sig) == noCkpt || !takesDefaultCkpt(tg, sig) {
		return deliverOrdinary, nil
	}
	if !senderMayCheckpoint(sender, p) {
		return deliverCkpt, linuxerr.EPERM
	}
	return deliverCkpt, nil
}

// deliverOne finishes a signalling syscall with a single target process tg: the original syscall
// delivers sig when decide says so, a policy error is returned as is, and otherwise ckpt
// registers the checkpoint on the target. If the target exited since the caller looked it up
// (ckpt fails), the original syscall runs so that it reports that as usual.
func deliverOne(t *kernel.Task, p Policy, tg *kernel.ThreadGroup, sig linux.Signal, ckpt func() error, sysno uintptr, args arch.SyscallArguments, orig kernel.SyscallFn) (uintptr, *kernel.SyscallControl, error) {
	d, err := decide(t, p, tg, sig)
	if d == deliverOrdinary {
		return orig(t, sysno, args)
	}
	if err != nil {
		return 0, nil, err
	}
	if err := ckpt(); err != nil {
		return orig(t, sysno, args)
	}
	return 0, nil, nil
}

// ckptProcess carries out the checkpoint default action of sig for the process tg, preferring
// thread preferred (nil: none). It reports ESRCH if the process has no live thread left.
func ckptProcess(p Policy, tg *kernel.ThreadGroup, preferred *kernel.Task, sig linux.Signal, info *linux.SignalInfo) error {
	freezer := chooseFreezer(tg, preferred, sig)
	if freezer == nil {
		return linuxerr.ESRCH
	}
	queueCkpt(freezer, sig, ckptActionOf(p, sig), info)
	return nil
}

// ckptThread carries out the checkpoint default action of a thread-directed sig on target.
func ckptThread(p Policy, target *kernel.Task, sig linux.Signal, info *linux.SignalInfo) error {
	if target.ExitState() != kernel.TaskExitNone {
		return linuxerr.ESRCH
	}
	queueCkpt(target, sig, ckptActionOf(p, sig), info)
	return nil
}
