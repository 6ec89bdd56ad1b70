package ckpt

import (
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// A process that a tree freeze captured in a group stop (manifest: "stopped", docs/tree-format.md)
// comes back stopped: once its thaw has restored its state and before it returns to user mode, it
// sends itself its stop signal, so that it stops before it runs a single instruction, at exactly
// the point where it was stopped, and a SIGCONT continues it from there.
//
// The stop is a real group stop: /proc shows "T", the parent's waitpid(WUNTRACED) reports it and
// the parent is sent SIGCHLD (CLD_STOPPED) unless it set SA_NOCLDSTOP, as for any new stop. A
// parent that had already collected the stop before the checkpoint therefore sees it once more;
// shells take that as the job being stopped, which it is.
//
// The recorded signal is sent again when its restored action is the default one and the restored
// thread does not block it (the usual case: it was just dequeued with that action), so that
// WSTOPSIG is the original one (a shell prints "Stopped (SIGTSTP)" again); otherwise SIGSTOP,
// which cannot be caught or blocked.

// restoreStop sends the process of t its recorded stop signal, if it has one.
//
// Preconditions: running on t's task goroutine in the commit of p; the process's signal actions
// are restored.
func (p *thawPlan) restoreStop(t *kernel.Task) {
	sig := p.stopSignal
	if sig == 0 {
		return
	}
	if sig != linux.SIGSTOP && !defaultUnblocked(p, sig) {
		sig = linux.SIGSTOP
	}
	if err := t.ThreadGroup().SendSignal(&linux.SignalInfo{Signo: int32(sig), Code: linux.SI_KERNEL}); err != nil {
		t.Warningf("ckpt: restoring the stop of pid %d (signal %d): %v", t.ThreadGroup().ID(), sig, err)
	}
}

// defaultUnblocked reports whether the image's action for sig is the default one and its first
// thread does not block sig.
func defaultUnblocked(p *thawPlan, sig linux.Signal) bool {
	if !sig.IsStandard() || len(p.proc.Threads) == 0 {
		return false
	}
	if p.proc.Signals.Actions[sig-1].Handler != linux.SIG_DFL {
		return false
	}
	return p.proc.Threads[0].SigMask&uint64(linux.SignalSetOf(sig)) == 0
}
