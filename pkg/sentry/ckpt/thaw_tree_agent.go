package ckpt

import (
	"fmt"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/ckptabi"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/memmap"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
	"gvisor.dev/gvisor/pkg/usermem"
)

// Agents. Every process of a restored tree is created by fork (clone) from its restored parent,
// so that parent links, sessions and groups come out as Linux makes them. gVisor's Task.Clone
// may only be called by a task inside a syscall, so each process-to-be is an *agent*: a task
// sitting in sys_checkpoint(CKPT_THAW_TREE) that executes the coordinator's commands on its own
// task goroutine (clone a child, setsid, setpgid, reap, exit as a zombie, thaw its image).
//
// A new task starts where its parent's syscall returns, in the parent's user code. To get it into
// sys_checkpoint without running any of that code, the coordinator maps a small trampoline page
// into its own address space (agents are forks of it and have it too), and the parent's registers
// point at it while Clone copies them: the child's first instructions are `mov $1000, %eax;
// syscall`, with the parent's argument registers set to (CKPT_THAW_TREE, -1, restore id,
// treeAgentFlag). A second entry exits the thread at once (SYS_exit): the throw-away threads that
// move gVisor's pid allocator forward. Clones are made with every signal blocked, so no handler of
// the parent's program can run on a trampoline.

// treeAgentFlag marks the CKPT_THAW_TREE call of an agent (the fourth argument); it is not a flag
// a program may pass.
const treeAgentFlag int32 = 1 << 30

// trampoline code: agent entry at 0 (if the agent's syscall ever returns to user mode, the
// process exits with status 127), thread-exit entry at trampExitThread.
var trampolineCode = []byte{
	0xb8, byte(ckptabi.SYS_checkpoint & 0xff), byte(ckptabi.SYS_checkpoint >> 8), 0x00, 0x00, // 0: mov $SYS_checkpoint, %eax
	0x0f, 0x05, // 5: syscall
	0xbf, 0x7f, 0x00, 0x00, 0x00, // 7: mov $127, %edi
	0xb8, 0xe7, 0x00, 0x00, 0x00, // 12: mov $231 (exit_group), %eax
	0x0f, 0x05, // 17: syscall
	0xb8, 0x3c, 0x00, 0x00, 0x00, // 19: mov $60 (exit), %eax
	0x31, 0xff, // 24: xor %edi, %edi
	0x0f, 0x05, // 26: syscall
	0xeb, 0xf5, // 28: jmp 19
}

const trampExitThread = 19

// mapTrampoline maps the trampoline into t's address space and returns its address.
func mapTrampoline(t *kernel.Task) (hostarch.Addr, error) {
	m := t.MemoryManager()
	addr, err := m.MMap(t, memmap.MMapOpts{
		Length:   hostarch.PageSize,
		Private:  true,
		Perms:    hostarch.ReadExecute,
		MaxPerms: hostarch.AnyAccess,
	})
	if err != nil {
		return 0, fmt.Errorf("mapping the restore trampoline: %w", err)
	}
	if _, err := m.CopyOut(t, addr, trampolineCode, usermem.IOOpts{IgnorePermissions: true}); err != nil {
		return 0, fmt.Errorf("writing the restore trampoline: %w", err)
	}
	return addr, nil
}

// cloneAt clones t with flags while t's registers point at entry (with the agent's syscall
// arguments for restore id) and every signal is blocked; t's registers and mask are restored
// afterwards. It returns the new task's id in t's PID namespace.
//
// Preconditions: running on t's task goroutine inside a syscall.
func cloneAt(t *kernel.Task, entry hostarch.Addr, id int32, flags uint64) (int32, error) {
	arch := t.Arch()
	saved := arch.Regs
	mask := t.SignalMask()
	t.SetSignalMask(^linux.SignalSet(0))
	arch.Regs.Rip = uint64(entry)
	arch.Regs.Rdi = uint64(uint32(CKPT_THAW_TREE))
	arch.Regs.Rsi = uint64(^uint32(0))
	arch.Regs.Rdx = uint64(uint32(id))
	arch.Regs.R10 = uint64(uint32(treeAgentFlag))
	// Untraced, like a thaw's thread clones (threadCloneFlags): a clone of the restore's is no
	// PTRACE_EVENT_FORK/CLONE of the program's for a tracer of t.
	args := &linux.CloneArgs{Flags: flags | linux.CLONE_UNTRACED}
	if flags&linux.CLONE_THREAD == 0 {
		args.ExitSignal = uint64(linux.SIGCHLD)
	}
	tid, _, err := t.Clone(args)
	arch.Regs = saved
	t.SetSignalMask(mask)
	if err != nil {
		return 0, err
	}
	return int32(tid), nil
}

// throwAwayThread makes a thread of t's process that exits at once, to move the pid allocator
// on, and returns its id.
func throwAwayThread(t *kernel.Task, tramp hostarch.Addr) (int32, error) {
	const flags = linux.CLONE_VM | linux.CLONE_FS | linux.CLONE_FILES | linux.CLONE_SIGHAND | linux.CLONE_THREAD | linux.CLONE_SYSVSEM
	return cloneAt(t, tramp+trampExitThread, 0, flags)
}

// agentOp is a command to an agent.
type agentOp int

const (
	opClone    agentOp = iota // clone a child agent (or waste) with arg clone flags; reply tid
	opReap                    // reap the exited child arg
	opSetsid                  // become a session (and group) leader
	opNewPgrp                 // become a process-group leader
	opJoinPgrp                // join process group arg
	opExit                    // exit with status ws: become a zombie; no reply after the exit
	opPrepare                 // prepare the thaw of the node's image; reply the error
	opThaw                    // exec into the prepared image; no reply
	opInstall                 // put file at a free fd (a shared file for the thaw to inherit); reply the fd
	opResume                  // a thread agent: become thread arg of plan from its frame at slot; reply
	opCtty                    // make file's terminal the controlling one (TIOCSCTTY); reply the error
)

// agentCmd is one command.
type agentCmd struct {
	op    agentOp
	arg   int64
	ws    linux.WaitStatus
	file  *vfs.FileDescription // opInstall, opCtty; the caller keeps its reference until the reply.
	plan  *thawPlan            // opResume: the plan being committed by the agent's process.
	slot  hostarch.Addr        // opResume: where the thread's frame goes.
	reply chan agentReply
}

// agentReply is an agent's answer.
type agentReply struct {
	tid int32
	err error
}

// waitChan receives from ch on t's goroutine without being interrupted by signals; it fails only
// if t is killed.
func waitChan[T any](t *kernel.Task, ch <-chan T) (T, bool) {
	for {
		t.UninterruptibleSleepStart()
		select {
		case v := <-ch:
			t.UninterruptibleSleepFinish()
			return v, true
		case <-time.After(treePoll * 5):
		}
		t.UninterruptibleSleepFinish()
		if t.Killed() {
			var zero T
			return zero, false
		}
	}
}

// serveAgent is the syscall of an agent: it runs the coordinator's commands until it exits as a
// zombie, thaws, or the restore is abandoned (it is killed then).
//
// Preconditions: running on t's task goroutine inside sys_checkpoint.
func serveAgent(t *kernel.Task, id int32) (uintptr, *kernel.SyscallControl, error) {
	r := lookupRestore(id)
	if r == nil {
		return 0, nil, linuxerr.EINVAL
	}
	n, err := r.awaitNode(t)
	if err != nil {
		return 0, nil, err
	}
	if n == nil {
		// A waste: a clone that got a pid below the one wanted. It exits; its parent reaps it
		// (a thread agent's waste exits alone and is not reaped).
		if t.ThreadGroup().Leader() == t {
			t.PrepareGroupExit(linux.WaitStatusExit(0))
		} else {
			t.PrepareExit(linux.WaitStatusExit(0))
		}
		return 0, kernel.CtrlDoExit, nil
	}
	n.serving.Store(true)
	for {
		cmd, ok := waitChan(t, n.cmds)
		if !ok {
			return 0, nil, linuxerr.EINTR
		}
		if ctl, done := n.exec(t, r, cmd); done {
			return ctl.ret, ctl.ctl, ctl.err
		}
	}
}

// agentResult is how an agent's syscall ends.
type agentResult struct {
	ret uintptr
	ctl *kernel.SyscallControl
	err error
}

// exec runs one command on the agent's goroutine. done is set when the agent's syscall must end
// with res.
func (n *restoreNode) exec(t *kernel.Task, r *treeRestore, cmd agentCmd) (res agentResult, done bool) {
	reply := func(tid int32, err error) {
		if cmd.reply != nil {
			cmd.reply <- agentReply{tid: tid, err: err}
		}
	}
	switch cmd.op {
	case opClone:
		tid, err := cloneAt(t, r.tramp, r.id, uint64(cmd.arg))
		reply(tid, err)
	case opReap:
		reply(0, reapChild(t, int32(cmd.arg)))
	case opSetsid:
		_, err := t.ThreadGroup().CreateSession(t)
		reply(0, err)
	case opNewPgrp:
		reply(0, t.ThreadGroup().CreateProcessGroup())
	case opJoinPgrp:
		reply(0, t.ThreadGroup().JoinProcessGroup(t.PIDNamespace(), kernel.ProcessGroupID(cmd.arg)))
	case opExit:
		if n.rec != nil {
			t.SetName(n.rec.Comm) // A zombie shows its recorded name.
		}
		t.PrepareGroupExit(cmd.ws)
		reply(0, nil)
		return agentResult{ctl: kernel.CtrlDoExit}, true
	case opInstall:
		reply(installShared(t, cmd.file))
	case opCtty:
		reply(0, setControllingTTY(t, cmd.file)) // thaw_tree_terminal.go
	case opPrepare:
		plan, err := prepareThaw(t, n.thawReq)
		if plan != nil && (len(n.threads) > 0 || n.fdShare != nil) {
			// Thawed in place: its thread agents or the processes sharing its fd table would
			// not survive an exec (thaw_tree_tids.go, thaw_tree_files.go).
			plan.inPlace, plan.agents = true, n.threads
			plan.fdShare, plan.fdOwner = n.fdShare, n.fdOwner
		}
		n.plan = plan
		reply(0, err)
	case opThaw:
		plan := n.plan
		n.plan = nil
		n.releaseThawReq(t)
		var ret uintptr
		var ctl *kernel.SyscallControl
		var err error
		if plan.inPlace {
			ret, ctl, err = thawInPlace(t, plan, n.thawStart) // thaw_tree_tids.go
		} else {
			ret, ctl, err = execThaw(t, plan, n.thawStart)
		}
		return agentResult{ret: ret, ctl: ctl, err: err}, true
	case opResume:
		ctl, err := resumeSelf(t, cmd.plan, int(cmd.arg), cmd.slot) // thaw_tree_tids.go
		reply(0, err)
		if err != nil {
			t.PrepareGroupExit(linux.WaitStatusTerminationSignal(linux.SIGKILL))
			return agentResult{ctl: kernel.CtrlDoExit}, true
		}
		return agentResult{ctl: ctl}, true
	}
	return agentResult{}, false
}

// reapChild waits for the child tid of t to exit and reaps it.
func reapChild(t *kernel.Task, tid int32) error {
	for i := 0; ; i++ {
		_, err := t.Wait(&kernel.WaitOptions{
			SpecificTID:   kernel.ThreadID(tid),
			NonCloneTasks: true,
			CloneTasks:    true,
			Events:        kernel.EventExit,
			ConsumeEvent:  true,
			NonBlock:      true,
		})
		if err == nil {
			return nil
		}
		if err != kernel.ErrNoWaitableEvent {
			return fmt.Errorf("reaping %d: %w", tid, err)
		}
		if !sleepUnlessKilled(t, time.Millisecond) {
			return linuxerr.EINTR
		}
	}
}
