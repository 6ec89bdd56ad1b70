package ckpt

import (
	"fmt"
	"sort"
	"time"

	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// Thread ids of a restored tree. gVisor cannot create a task at a chosen id (no set_tid) and its
// Execve kills every thread but the caller. So a process's extra threads get their recorded ids
// the way processes get their pids (thaw_tree_pids.go): while the restore walks the recorded ids
// in ascending order, a thread's id is reached like a pid and taken by a *thread agent*, a
// CLONE_THREAD clone of its process's agent that waits in sys_checkpoint like the agents do. A
// process that has thread agents is thawed in place instead of through an exec (which would kill
// them): its agent commits the image on its own goroutine inside its syscall (the same commit as
// after the exec: it clears the address space, maps the image and sets fds, signal state and
// registers), and each thread agent, told by the committing thread, loads its recorded registers
// from a signal frame (resumeFromFrame) and returns to user mode as that thread, with its own id.
//
// Only exact restores (a fresh container: CKPT_TREE_SELF) keep thread ids; a thread whose id is
// below its process's pid (the id space wrapped between them) or taken gets a new id as before.
// The exec path stays for processes without thread agents and for restores into a running
// sandbox.

// threadAgentFlags are the clone flags of a thread agent: a thread of its process's agent.
const threadAgentFlags = linux.CLONE_VM | linux.CLONE_FS | linux.CLONE_FILES | linux.CLONE_SIGHAND |
	linux.CLONE_THREAD | linux.CLONE_SYSVSEM

// treeID is one id the restore creates in ascending order: a process (thread == false) or an
// extra thread of process pid.
type treeID struct {
	id     int32
	pid    int32
	thread bool
	ghost  *ghostLeader // The leader of a group or session that is not in the checkpoint.
}

// idsToCreate lists the ids of pids and, in an exact restore, the extra thread ids of each live
// process that lie above its pid and the ghost leaders' ids (thaw_tree_ghosts.go), in ascending
// order.
func (r *treeRestore) idsToCreate(pids []int32) []treeID {
	ids := make([]treeID, 0, len(pids))
	for _, pid := range pids {
		ids = append(ids, treeID{id: pid, pid: pid})
		n := r.nodes[pid]
		if !r.exact || n.rec.Zombie != nil {
			continue
		}
		for i, tid := range n.rec.TIDs {
			if i == 0 || tid <= pid {
				continue // The leader's (or the first recorded thread's) role goes to the agent.
			}
			ids = append(ids, treeID{id: tid, pid: pid, thread: true})
		}
	}
	for _, g := range r.ghosts {
		ids = append(ids, treeID{id: g.id, ghost: g})
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].id < ids[j].id })
	return ids
}

// createThreadAgent makes the thread agent of recorded thread tid of process node p, at that id.
// A thread id that cannot be had is no error: the thaw then makes the thread with a new id.
func (r *treeRestore) createThreadAgent(p *restoreNode, tid int32) error {
	if p.task == nil || r.usedID(tid) || (r.last != 0 && tid <= r.last) {
		return nil // Taken, or behind the allocator: reached only by going round the id space.
	}
	got, err := r.create(p, p, tid, threadAgentFlags)
	if err != nil {
		return fmt.Errorf("thread %d of pid %d: %w", tid, p.rec.PID, err)
	}
	n := &restoreNode{pid: got, cmds: make(chan agentCmd, 1), threadOf: p}
	n.task = r.ns.TaskWithID(kernel.ThreadID(got))
	r.register(got, n)
	if p.threads == nil {
		p.threads = make(map[int32]*restoreNode)
	}
	p.threads[tid] = n
	return nil
}

// thawInPlace commits plan on t (an agent, or the coordinator, inside its sys_checkpoint) without
// an exec, once t's process holds no task but t and its thread agents (the coordinator's
// throw-away threads exit on their own), and returns the control that resumes t as the image's
// first thread. Every thread agent is already inside its syscall (awaitThreadAgents ran before
// any thaw was let go: a clone starts in user mode, on the trampoline that the commit unmaps). On
// a failure after the point of no return the process is killed, as after an exec.
//
// Preconditions: running on t's task goroutine inside sys_checkpoint; awaitThreadAgents returned.
func thawInPlace(t *kernel.Task, plan *thawPlan, start time.Time) (uintptr, *kernel.SyscallControl, error) {
	plan.start, plan.prepared = start, time.Now()
	defer plan.release(t)
	want := 1 + len(plan.agents)
	for t.ThreadGroup().Count() > want {
		if !sleepUnlessKilled(t, time.Millisecond) {
			return 0, nil, linuxerr.EINTR // A syscall's error must be an errno.
		}
	}
	committing := time.Now()
	if err := plan.commit(t); err != nil {
		t.Warningf("ckpt: thaw in place failed after the point of no return, killing the process: %v", err)
		t.ThreadGroup().SendSignal(&linux.SignalInfo{Signo: int32(linux.SIGKILL)})
		return 0, nil, sysErrno(errnoThaw, err)
	}
	plan.logThawed(t, committing)
	return 0, plan.ctl, nil
}

// resumeAgent makes the thread agent a continue as thread i of the image, whose frame goes into
// slot: a loads its registers itself (opResume) and returns to user mode with its own id.
//
// Preconditions: running on t's task goroutine (t is the committing thread of a's process).
func (p *thawPlan) resumeAgent(t *kernel.Task, a *restoreNode, i int, slot hostarch.Addr) error {
	th := &p.proc.Threads[i]
	reply := make(chan agentReply, 1)
	a.cmds <- agentCmd{op: opResume, arg: int64(i), plan: p, slot: slot, reply: reply}
	rep, ok := waitChan(t, reply)
	if !ok {
		return fmt.Errorf("killed while thread %d resumed", th.TID)
	}
	if rep.err != nil {
		return fmt.Errorf("thread agent %d: %w", a.pid, rep.err)
	}
	resendPending(t, a.task, th.TID, false, 0, th.SigPending&^p.proc.Signals.Pending, exactPending(p.proc))
	p.newTIDs[th.TID] = kernel.ThreadID(a.pid)
	return nil
}

// resumeSelf is a thread agent's side of resumeAgent: it loads thread i's registers, mask and
// alternate stack from a frame at slot and sets its robust list and clear_child_tid. The returned
// control ends the agent's syscall.
//
// Preconditions: running on t's task goroutine inside sys_checkpoint.
func resumeSelf(t *kernel.Task, p *thawPlan, i int, slot hostarch.Addr) (*kernel.SyscallControl, error) {
	th := &p.proc.Threads[i]
	ctl, err := resumeFromFrame(t, slot, th, thawedRax(p.proc, i, p.retval, false))
	if err != nil {
		return nil, err
	}
	m := t.MemoryManager()
	if ar, last := consumeThawFrame(m, slot); last {
		if err := m.MUnmap(t, ar.Start, uint64(ar.Length())); err != nil {
			return nil, fmt.Errorf("unmapping the frame scratch: %w", err)
		}
	}
	t.SetRobustList(hostarch.Addr(th.RobustList))
	if th.ClearTID != 0 {
		t.SetClearTID(hostarch.Addr(th.ClearTID))
		recordClearTID(t, m, hostarch.Addr(th.ClearTID))
	}
	return ctl, nil
}

// awaitThreadAgents waits until every thread agent of the restore runs its command loop. A new
// clone enters sys_checkpoint on its own time; once the restore has ended (and is no longer
// registered) a late one would find no restore, return to the trampoline and exit its whole
// process (CI: a worker of a restored server died so, at load).
//
// Preconditions: running on the coordinator's task goroutine.
func (r *treeRestore) awaitThreadAgents(t *kernel.Task) error {
	for _, n := range r.nodes {
		for _, a := range n.threads {
			for !a.serving.Load() {
				if a.task != nil && a.task.ExitState() != kernel.TaskExitNone {
					return fmt.Errorf("thread agent %d of pid %d exited: %w", a.pid, n.rec.PID, linuxerr.ESRCH)
				}
				if !sleepUnlessKilled(t, time.Millisecond) {
					return fmt.Errorf("killed while waiting for the thread agents: %w", linuxerr.EINTR)
				}
			}
		}
	}
	return nil
}
