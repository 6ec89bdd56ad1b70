package ckpt

import (
	"fmt"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// Signal state: actions, itimers and the parent-death signal are set here; each thread's mask and
// alternate stack come with its signal frame (thaw_regs.go). Pending signals are re-sent with
// their exact siginfo where the image has it (obj_pendingsig.go), else with a minimal one (SI_USER
// from the process itself).

// restoreSignals installs the image's process-wide signal state.
//
// Preconditions: running on t's task goroutine; the address space is restored (handlers are
// addresses in it).
func restoreSignals(t *kernel.Task, p *imgfmt.Process) error {
	s := &p.Signals
	tg := t.ThreadGroup()
	for i := range s.Actions {
		sig := linux.Signal(i + 1)
		if sig == linux.SIGKILL || sig == linux.SIGSTOP {
			continue
		}
		a := &s.Actions[i]
		act := linux.SigAction{Handler: a.Handler, Flags: a.Flags, Restorer: a.Restorer, Mask: linux.SignalSet(a.Mask)}
		if _, err := tg.SetSigAction(sig, &act); err != nil {
			return fmt.Errorf("sigaction(%d): %w", sig, err)
		}
	}
	// All three, armed or not: the thawer's own timers survived its exec and must not leak into
	// the thawed program.
	for id, it := range s.Itimers {
		v := linux.ItimerVal{
			Interval: linux.DurationToTimeval(time.Duration(it.IntervalNano)),
			Value:    linux.DurationToTimeval(time.Duration(it.ValueNano)),
		}
		if _, err := t.Setitimer(int32(id), v); err != nil {
			return fmt.Errorf("setitimer(%d): %w", id, err)
		}
	}
	t.SetParentDeathSignal(linux.Signal(s.PdeathSig))
	return nil
}

// discardThawerSignals drops the signals pending on t and its thread group (the thawer's, e.g. a
// SIGCHLD): exec keeps them, and the thawed program must see exactly the image's pending signals.
// SIGKILL and SIGSTOP stay (they cannot be dequeued, and must not be lost).
func discardThawerSignals(t *kernel.Task) {
	all := ^linux.SignalSet(0)
	for i := 0; i < 2*linux.SignalMaximum+64; i++ { // Bounded: real-time signals queue.
		if _, err := t.Sigtimedwait(all, 0); err != nil {
			return
		}
	}
}

// resendPending queues pending signals of the image again: groupPending to the thread group,
// threadPending to target. They are delivered when the restored masks allow it. exact holds the
// image's exact siginfos (for the first thread's call; nil for the others): a signal they cover is
// sent with each of them, in order; the others with a minimal siginfo (SI_USER from the process).
func resendPending(t, target *kernel.Task, groupPending, threadPending uint64, exact []*linux.SignalInfo) {
	var covered uint64
	for _, info := range exact {
		bit := uint64(linux.SignalSetOf(linux.Signal(info.Signo)))
		if (groupPending|threadPending)&bit == 0 {
			continue
		}
		covered |= bit
		sendPending(t, target, groupPending, info)
	}
	for sig := linux.Signal(1); sig <= linux.SignalMaximum; sig++ {
		bit := uint64(1) << (sig - 1)
		if covered&bit != 0 {
			continue
		}
		info := &linux.SignalInfo{Signo: int32(sig), Code: linux.SI_USER}
		info.SetPID(int32(t.ThreadGroup().ID()))
		if groupPending&bit != 0 {
			t.ThreadGroup().SendSignal(info)
		}
		if threadPending&bit != 0 {
			target.SendSignal(info)
		}
	}
}
