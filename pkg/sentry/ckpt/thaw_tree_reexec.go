package ckpt

import (
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/mm"
)

// A restorer that is to become the tree's root (CKPT_TREE_SELF) must be single-threaded: its other
// threads hold ids the tree needs (a Go `checkpt` as a container's init has threads 2, 3, ... which
// are the pids of the init's first children). Such a caller is first turned into a single-threaded
// process: it execs its own executable (the only exported way to end sibling threads), and task work
// before the first instruction of the new program points it at the trampoline, whose syscall
// re-enters CKPT_THAW_TREE as the coordinator of the loaded restore (treeCoordFlag). The ids the
// old threads had are free then, but below the allocator's position: reaching them costs one trip
// round the id space with throw-away threads (thaw_tree_pids.go). A single-threaded restorer (the
// init the host's restore command starts) avoids both.

// treeCoordFlag marks the re-entry of a re-exec'd coordinator (the fourth argument).
const treeCoordFlag int32 = 1 << 29

// threadCount returns the number of live threads of t's process.
func threadCount(t *kernel.Task) int {
	n := 0
	t.ThreadGroup().ForEachTask(func(o *kernel.Task) bool {
		if o.ExitState() == kernel.TaskExitNone {
			n++
		}
		return true
	})
	return n
}

// becomeCoordinator is the task work run after the re-exec.
type becomeCoordinator struct {
	r      *treeRestore
	before *mm.MemoryManager
}

// TaskWork implements kernel.TaskWorker.
func (w *becomeCoordinator) TaskWork(t *kernel.Task) {
	r := w.r
	if t.MemoryManager() == w.before {
		t.Warningf("ckpt: tree restore: the re-exec failed; the restorer keeps running")
		r.unregister()
		r.releaseAll(t)
		return
	}
	tramp, err := mapTrampoline(t)
	if err != nil {
		t.Warningf("ckpt: tree restore: %v", err)
		if r.report {
			reportTreeFailure(t, err)
		}
		r.unregister()
		r.releaseAll(t)
		t.ThreadGroup().SendSignal(&linux.SignalInfo{Signo: int32(linux.SIGKILL)})
		return
	}
	r.tramp = tramp
	t.SetSignalMask(^linux.SignalSet(0))
	regs := &t.Arch().Regs
	regs.Rip = uint64(tramp)
	regs.Rdi = uint64(uint32(CKPT_THAW_TREE))
	regs.Rsi = uint64(^uint32(0))
	regs.Rdx = uint64(uint32(r.id))
	regs.R10 = uint64(uint32(treeCoordFlag))
}

// reexecCoordinator execs t's executable and re-enters the restore r single-threaded.
func reexecCoordinator(t *kernel.Task, r *treeRestore) (uintptr, *kernel.SyscallControl, error) {
	exe := t.MemoryManager().Executable()
	if exe == nil {
		r.unregister()
		r.releaseAll(t)
		return 0, nil, linuxerr.EINVAL
	}
	t.RegisterWork(&becomeCoordinator{r: r, before: t.MemoryManager()})
	return 0, t.Execve([]string{"runsc-ckpt-restore"}, nil, 0, exe.MappedName(t), exe, false), nil
}

// resumeCoordinator is the re-entry of a re-exec'd coordinator.
func resumeCoordinator(t *kernel.Task, id int32) (uintptr, *kernel.SyscallControl, error) {
	r := lookupRestore(id)
	if r == nil || r.coord != t {
		return 0, nil, linuxerr.EINVAL
	}
	r.top.task = t
	return coordinate(t, r)
}
