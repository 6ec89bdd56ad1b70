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
// threadPending to target, whose TID in the image is tid. They are delivered when the restored
// masks allow it. entries are the image's exact siginfos (exactPending): those of target's queue
// (and for the first thread, tid0, the group's) are sent in order, except the queues that hold a
// timer's signal, which wait for the timers (sendTimerQueues); a pending signal no entry covers is
// sent with a minimal siginfo (SI_USER from the process).
func resendPending(t, target *kernel.Task, tid int32, tid0 bool, groupPending, threadPending uint64, entries []pendingEntry) {
	var covered uint64
	deferred := timerQueues(entries)
	for i := range entries {
		e := &entries[i]
		if !(e.group && tid0 || !e.group && e.tid == tid) {
			continue
		}
		covered |= uint64(linux.SignalSetOf(linux.Signal(e.info.Signo)))
		if !deferred[e.key()] {
			sendEntry(t, target, e)
		}
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
