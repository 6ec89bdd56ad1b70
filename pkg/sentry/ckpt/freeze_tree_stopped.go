package ckpt

import (
	"fmt"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/mm"
)

// A process in a group stop (SIGSTOP, or job control: SIGTSTP, SIGTTIN, SIGTTOU) never runs the
// task work a tree freeze registers on it: its threads sit in gVisor's doStop until a SIGCONT.
// The coordinator captures such a process from its own goroutine instead (captureStoppedMember):
//
//  1. it puts an external stop on every thread (BeginExternalStop), so that none leaves its stop
//     while it is read, even if a SIGCONT comes meanwhile;
//  2. it checks, under those holds, that every thread is still stopped and that each stop is a
//     group stop (/proc's state letter "T" from Task.StateStatus, which reads the stop's type
//     under the signal mutex): a ptrace stop ("t") is refused, any other stop (a vfork parent
//     waiting for its child, a thread parked by another freeze) is left to the caller;
//  3. it pulls each thread's full state into the thread's arch context: on systrap the FP state
//     stays in the stub's shared memory until the platform pulls it, and Task.SigaltStack(0, 0)
//     pulls it (platform.Context.PullFullState) and changes nothing else. That is safe from
//     another goroutine only because the thread is held in doStop, where its goroutine does not
//     touch its platform context (docs/upstream-gaps.md; TestTreeGapPremises checks the premise);
//  4. it captures the process exactly as the process would capture itself (captureStopped, with
//     the held leader as the capturing thread, every thread at a user boundary: a syscall the
//     stop interrupted is restarted after the thaw), takes its copy-on-write snapshot, and
//     records the group stop's signal (ThreadGroup.groupStopSignal, read through stateify);
//  5. the holds are lifted when the tree is released, as the parking of a process that captured
//     itself ends; the process is still in its group stop then, as before.
//
// Kernel.Pause with Kernel.ReceiveTaskStates would pull every task's state too, but Pause waits
// until every task goroutine of the sandbox sits in doStop, and the coordinator (inside
// sys_checkpoint) and the members parked in their task work never do: it would never return.

// heldStop is a process held in its group stop (see above): every thread has an external stop
// on it, owned by stop, which takes part in the freezes registry; stop.resume lets the threads go
// back to their group stop.
type heldStop struct {
	stop    *siblingStop
	threads []*kernel.Task
	self    *kernel.Task // The thread that acts as the capturing one: the leader if it lives.
	sig     linux.Signal // The group stop's signal.
}

// holdGroupStop holds tg's threads if every one sits in a group stop. It returns nil without error
// when the process is not (or no longer) in a group stop, or another freeze of it runs, or it is
// in a ptrace stop and refuseTraced is false.
//
// Errors: EBUSY for a process in a ptrace stop if refuseTraced (a tree: a restore cannot recreate
// its tracer).
func holdGroupStop(t *kernel.Task, tg *kernel.ThreadGroup, pid int32, refuseTraced bool) (*heldStop, error) {
	threads := liveThreads(tg)
	if len(threads) == 0 {
		return nil, nil
	}
	for _, o := range threads {
		o.BeginExternalStop()
	}
	held := true
	defer func() {
		if held {
			for _, o := range threads {
				o.EndExternalStop()
			}
		}
	}()
	group, traced := 0, 0
	for _, o := range threads {
		if o.ExitState() != kernel.TaskExitNone || o.TaskGoroutineState() != kernel.TaskGoroutineStopped {
			return nil, nil
		}
		switch o.StateStatus()[0] {
		case 'T':
			group++
		case 't':
			traced++
		}
	}
	if len(liveThreads(tg)) != len(threads) {
		return nil, nil
	}
	if traced > 0 {
		if !refuseTraced {
			return nil, nil
		}
		t.Infof("ckpt: pid %d is in a ptrace stop: a restore cannot recreate its tracer; detach the tracer first", pid)
		return nil, linuxerr.EBUSY
	}
	if group != len(threads) {
		return nil, nil
	}
	sig, err := stateInt(tg, "groupStopSignal")
	if err != nil {
		return nil, fmt.Errorf("pid %d: reading its stop signal: %w", pid, err)
	}
	if !isStopSignal(linux.Signal(sig)) {
		t.Infof("ckpt: pid %d is in a group stop with signal %d, not a stop signal", pid, sig)
		return nil, linuxerr.EBUSY
	}
	// Take part in the freezes registry like any capture, so that no other freeze of the process
	// reads it meanwhile; the siblingStop owns the holds from here on.
	freezes.mu.Lock()
	if freezes.m[tg] != nil {
		freezes.mu.Unlock()
		return nil, nil
	}
	stop := &siblingStop{tg: tg, captured: make(map[*kernel.Task]captureResult), waiting: make(map[*kernel.Task]bool), parked: threads}
	freezes.m[tg] = stop
	freezes.mu.Unlock()
	held = false
	h := &heldStop{stop: stop, threads: threads, self: threads[0], sig: linux.Signal(sig)}
	if leader := tg.Leader(); leader != nil && leader.ExitState() == kernel.TaskExitNone {
		h.self = leader
	}
	return h, nil
}

// captureStoppedMember captures m's process from the coordinator's goroutine if every thread of it
// sits in a group stop, and reports whether it did (then m.work is a captured treeWork whose
// release lifts the holds). It reports false without error when the process is not (or no longer)
// in a group stop, or another freeze of it runs: the caller waits as for any other member.
//
// Errors: those of holdGroupStop; the capture's errors come as m.work's.
//
// Preconditions: running on the coordinator's task goroutine t; m.work is registered.
func captureStoppedMember(t *kernel.Task, m *treeMember) (bool, error) {
	h, err := holdGroupStop(t, m.tg, m.pid, true)
	if h == nil || err != nil {
		return false, err
	}
	if !m.work.cancel() {
		h.stop.resume() // Its work began after all: it captures itself.
		return false, nil
	}
	began := time.Now()
	w := &treeWork{captured: make(chan struct{}), release: make(chan struct{}), registered: began, started: true}
	m.work = w
	p, err := captureHeld(h.self, h.threads)
	if err != nil {
		h.stop.resume()
		w.err = fmt.Errorf("capturing the stopped process: %w", err)
		close(w.captured)
		return true, nil
	}
	w.record(h.self, p, h.stop, began)
	w.stopSignal = int(h.sig)
	close(w.captured)
	t.Infof("ckpt: tree freeze: pid %d is stopped (signal %d): captured from outside in %v", m.pid, h.sig, time.Since(began))
	go func() {
		<-w.release
		h.stop.resume()
	}()
	return true, nil
}

// captureHeld captures the process of self, whose threads (self among them) are all held in a
// stop: each thread's full state is pulled first (see above).
func captureHeld(self *kernel.Task, threads []*kernel.Task) (*imgfmt.Process, error) {
	var siblings []imgfmt.Thread
	for _, o := range threads {
		if o == self {
			continue
		}
		th, err := captureThread(o, atUserBoundary) // Pulls o's full state first.
		if err != nil {
			return nil, err
		}
		siblings = append(siblings, th)
	}
	return captureStopped(self, captureRequest{at: atUserBoundary}, siblings)
}

// liveThreads returns the threads of tg that have not begun to exit.
func liveThreads(tg *kernel.ThreadGroup) []*kernel.Task {
	var out []*kernel.Task
	tg.ForEachTask(func(o *kernel.Task) bool {
		if o.ExitState() == kernel.TaskExitNone {
			out = append(out, o)
		}
		return true
	})
	return out
}

// isStopSignal reports whether sig is one of the four signals whose default action stops.
func isStopSignal(sig linux.Signal) bool {
	switch sig {
	case linux.SIGSTOP, linux.SIGTSTP, linux.SIGTTIN, linux.SIGTTOU:
		return true
	}
	return false
}

// vforkChild returns the pid of a process of t's namespace other than tg that shares tg's address
// space (a vfork child that has neither exec'd nor exited), or 0.
func vforkChild(t *kernel.Task, tg *kernel.ThreadGroup) int32 {
	leader := tg.Leader()
	if leader == nil {
		return 0
	}
	var m *mm.MemoryManager
	leader.WithMuLocked(func(l *kernel.Task) { m = l.MemoryManager() })
	if m == nil {
		return 0
	}
	ns := t.PIDNamespace()
	for _, o := range ns.ThreadGroups() {
		ol := o.Leader()
		if o == tg || ol == nil {
			continue
		}
		var om *mm.MemoryManager
		ol.WithMuLocked(func(l *kernel.Task) { om = l.MemoryManager() })
		if om == m {
			return int32(ns.IDOfThreadGroup(o))
		}
	}
	return 0
}

// recordStopped marks the processes captured in a group stop in the manifest, which then needs
// version 4 (a build that would restore them running refuses it).
func recordStopped(manifest *treefmt.Manifest, members []*treeMember) {
	for _, m := range members {
		if m.work == nil || m.work.stopSignal == 0 {
			continue
		}
		if mp := manifest.Process(m.pid); mp != nil {
			mp.Stopped = &treefmt.Stop{Signal: m.work.stopSignal}
			manifest.Version = max(manifest.Version, treefmt.VersionStopped)
		}
	}
}
