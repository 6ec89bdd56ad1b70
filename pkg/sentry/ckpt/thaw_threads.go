package ckpt

import (
	"fmt"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/marshal/primitive"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/memmap"
)

// Threads: gVisor cannot create a task with chosen registers, nor choose its thread id. Each extra
// thread k is cloned with the caller's registers temporarily pointed at the vDSO's
// __kernel_rt_sigreturn and a stack pointer at thread k's signal frame: the child's first user
// instruction is rt_sigreturn, which loads thread k's registers, FP state, mask and altstack
// (docs/design.md, "Threads of a thaw"). CLONE_CHILD_SETTID writes the new tid where the thread library keeps it
// (glibc's pthread->tid is the clear_child_tid address), so join and mutexes keep working; only if
// that word holds the thread's old tid (musl's clear_child_tid is a lock word, see holdsTID).

// threadCloneFlags are the clone flags of a thread created by pthread_create, plus the tid
// bookkeeping, plus CLONE_UNTRACED: these clones are the thaw's, not the program's, and a tracer's
// PTRACE_O_TRACECLONE must not make gVisor's Task.Clone begin a PTRACE_EVENT_CLONE stop that only
// the clone syscall's return would enter (a second one panicked the sentry; docs/fuzzing.md,
// finding 4).
const threadCloneFlags = linux.CLONE_VM | linux.CLONE_FS | linux.CLONE_FILES | linux.CLONE_SIGHAND |
	linux.CLONE_THREAD | linux.CLONE_SYSVSEM | linux.CLONE_SETTLS | linux.CLONE_UNTRACED

// resumeThreads recreates the image's extra threads and finally makes t itself continue as
// Threads[0], with rax = the thaw's retval if it froze in sys_checkpoint.
//
// Preconditions: running on t's task goroutine; memory, fds and signal state are restored.
func (p *thawPlan) resumeThreads(t *kernel.Task) error {
	m := t.MemoryManager()
	n := len(p.proc.Threads)
	scratch, err := m.MMap(t, memmap.MMapOpts{
		Length:   uint64(n * frameSlot),
		Private:  true,
		Perms:    hostarch.ReadWrite,
		MaxPerms: hostarch.AnyAccess,
		Name:     vmaThawScratch,
		NameMut:  memmap.NameMutAnon,
	})
	if err != nil {
		return fmt.Errorf("mapping the frame scratch: %w", err)
	}
	// The new threads read their frames later; whoever reads the last frame unmaps the scratch
	// (thaw_scratch.go). Registered before any of them exists: a new thread runs at once. Slot 0,
	// t's own frame, is registered too: otherwise the last new thread could unmap the scratch
	// before t has written and read its frame there (seen: "writing the FP image: bad address").
	slots := make([]hostarch.Addr, 0, n)
	for i := 0; i < n; i++ {
		slots = append(slots, scratch+hostarch.Addr(i*frameSlot))
	}
	p.newTIDs = map[int32]kernel.ThreadID{p.proc.Threads[0].TID: t.ThreadID()}
	registerThawFrames(m, hostarch.AddrRange{Start: scratch, End: scratch + hostarch.Addr(n*frameSlot)}, slots)
	// A new thread inherits t's signal mask and keeps it until its first instruction (rt_sigreturn)
	// loads its own: block everything meanwhile, so that a signal pending on it (sent right after
	// the clone) waits for its restored mask instead of hitting it before (seen: a SIGUSR2 pending
	// on the second thread killed the thawed process). t's own mask comes with its frame below.
	t.SetSignalMask(^linux.SignalSet(0))
	for i := 1; i < n; i++ {
		slot := scratch + hostarch.Addr(i*frameSlot)
		var err error
		if a := p.agents[p.proc.Threads[i].TID]; a != nil {
			err = p.resumeAgent(t, a, i, slot) // thaw_tree_tids.go
		} else {
			err = p.cloneThread(t, i, slot)
		}
		if err != nil {
			return fmt.Errorf("thread %d (tid %d in the image): %w", i, p.proc.Threads[i].TID, err)
		}
	}
	th := &p.proc.Threads[0]
	rax := thawedRax(p.proc, 0, p.retval, afterSyscallInsn(t, th.Regs.Rip))
	ctl, err := resumeFromFrame(t, scratch, th, rax)
	if err != nil {
		return err
	}
	p.ctl = ctl
	// SignalReturn has read t's frame: consume it like a new thread's rt_sigreturn does.
	if ar, last := consumeThawFrame(m, scratch); last {
		if err := m.MUnmap(t, ar.Start, uint64(ar.Length())); err != nil {
			return fmt.Errorf("unmapping the frame scratch: %w", err)
		}
	}
	// A thread's pending set includes the group's (freeze sees only the union): send the group's
	// once, to the group.
	resendPending(t, t, th.TID, true, p.proc.Signals.Pending, th.SigPending&^p.proc.Signals.Pending, exactPending(p.proc))
	p.restoreStop(t) // thaw_tree_stopped.go
	t.SetRobustList(hostarch.Addr(th.RobustList))
	if th.ClearTID != 0 {
		t.SetClearTID(hostarch.Addr(th.ClearTID))
		recordClearTID(t, m, hostarch.Addr(th.ClearTID))
		if holdsTID(t, th) {
			// glibc's main thread keeps its tid at its clear_child_tid address (pthread->tid),
			// for pthread_kill and mutex owners: give it the new one, as CLONE_CHILD_SETTID
			// does for the other threads.
			if _, err := primitive.CopyInt32Out(t, hostarch.Addr(th.ClearTID), int32(t.ThreadID())); err != nil {
				return fmt.Errorf("updating the tid at %#x: %w", th.ClearTID, err)
			}
		}
	}
	if at, ok := muslTID(t, th); ok {
		if _, err := primitive.CopyInt32Out(t, at, int32(t.ThreadID())); err != nil {
			return fmt.Errorf("updating the tid at %#x: %w", at, err)
		}
	}
	if at, ok := goProcID(t, th); ok {
		if _, err := primitive.CopyUint64Out(t, at, uint64(t.ThreadID())); err != nil {
			return fmt.Errorf("updating the tid at %#x: %w", at, err)
		}
	}
	return nil
}

// holdsTID reports whether th's clear_child_tid word holds th's tid from the image. glibc keeps the
// tid there (pthread->tid) and must get the new one; musl points clear_child_tid at a lock word
// (__thread_list_lock), which must not be overwritten. Reads the restored memory.
func holdsTID(t *kernel.Task, th *imgfmt.Thread) bool {
	var v primitive.Int32
	if _, err := v.CopyIn(t, hostarch.Addr(th.ClearTID)); err != nil {
		return false
	}
	return int32(v) == th.TID
}

// muslThreadTIDOffset is where musl's struct pthread keeps the tid: after self, dtv, prev, next,
// sysinfo and canary (8 bytes each), at the thread pointer.
const muslThreadTIDOffset = 48

// muslTID returns where th's thread library keeps th's tid if that is musl's layout: the thread
// pointer (fs_base) points at a descriptor whose first word is the thread pointer itself and whose
// tid field holds th's tid from the image. musl uses it for raise, pthread_kill and mutex owners.
// glibc's descriptor has its pointer guard there (never a small tid); Go's TLS has no self pointer.
func muslTID(t *kernel.Task, th *imgfmt.Thread) (hostarch.Addr, bool) {
	tp := th.Regs.FsBase
	if tp == 0 || tp%8 != 0 {
		return 0, false
	}
	var self primitive.Uint64
	var tid primitive.Int32
	if _, err := self.CopyIn(t, hostarch.Addr(tp)); err != nil || uint64(self) != tp {
		return 0, false
	}
	at := hostarch.Addr(tp + muslThreadTIDOffset)
	if _, err := tid.CopyIn(t, at); err != nil || int32(tid) != th.TID {
		return 0, false
	}
	return at, true
}

// Go's runtime (static binaries, linux/amd64) keeps the current g at -8(%fs) and each M's tid in
// m.procid, which it uses to send preemption signals (tgkill). With stale tids a goroutine spinning
// without calls can no longer be preempted and a GC stop-the-world waits for it forever. The offsets:
// g.m is at 48 (stack, stackguard0, stackguard1, _panic, _defer before it, unchanged for years);
// m.procid follows g0, morebuf (a gobuf of 6 words since Go 1.24, 7 before) and divmod: 64 or 72.
const goGM = 48

var goProcIDOffsets = []uint64{64, 72}

// goProcID returns where th's Go M keeps its tid if th runs Go: the g at -8(%fs) points at an m
// whose g0 points back at it (g0.m == m), and m.procid at one of the known offsets holds th's tid
// from the image. Anything else (C, musl, a Go version with another layout) is left alone.
func goProcID(t *kernel.Task, th *imgfmt.Thread) (hostarch.Addr, bool) {
	word := func(a uint64) (uint64, bool) {
		var v primitive.Uint64
		if a == 0 || a%8 != 0 {
			return 0, false
		}
		if _, err := v.CopyIn(t, hostarch.Addr(a)); err != nil {
			return 0, false
		}
		return uint64(v), true
	}
	tp := th.Regs.FsBase
	if tp < 8 {
		return 0, false
	}
	g, ok := word(tp - 8)
	if !ok {
		return 0, false
	}
	m, ok := word(g + goGM)
	if !ok {
		return 0, false
	}
	g0, ok := word(m)
	if !ok {
		return 0, false
	}
	if back, ok := word(g0 + goGM); !ok || back != m {
		return 0, false
	}
	for _, off := range goProcIDOffsets {
		if id, ok := word(m + off); ok && id == uint64(th.TID) {
			return hostarch.Addr(m + off), true
		}
	}
	return 0, false
}

// cloneThread creates the task for p.proc.Threads[i], whose frame goes into slot.
func (p *thawPlan) cloneThread(t *kernel.Task, i int, slot hostarch.Addr) error {
	th := &p.proc.Threads[i]
	sp, err := writeFrame(t, slot, th, thawedRax(p.proc, i, p.retval, false))
	if err != nil {
		return err
	}
	ac := t.Arch()
	saved := ac.Regs
	ac.Regs.Rip = t.MemoryManager().VDSOSigReturn()
	ac.Regs.Rsp = uint64(sp)
	args := linux.CloneArgs{Flags: threadCloneFlags, TLS: th.Regs.FsBase}
	if th.ClearTID != 0 {
		args.Flags |= linux.CLONE_CHILD_CLEARTID
		args.ChildTID = th.ClearTID
		if holdsTID(t, th) {
			args.Flags |= linux.CLONE_CHILD_SETTID
		}
	}
	if at, ok := muslTID(t, th); ok {
		// musl keeps the tid in its thread descriptor; pthread_create fills it the same way.
		args.Flags |= linux.CLONE_PARENT_SETTID
		args.ParentTID = uint64(at)
	} else if at, ok := goProcID(t, th); ok {
		// The low half of Go's m.procid (a small tid: the high half is already 0).
		args.Flags |= linux.CLONE_PARENT_SETTID
		args.ParentTID = uint64(at)
	}
	tid, _, err := t.Clone(&args)
	ac.Regs = saved
	if err != nil {
		return fmt.Errorf("clone: %w", err)
	}
	if nt := t.PIDNamespace().TaskWithID(tid); nt != nil {
		nt.SetRobustList(hostarch.Addr(th.RobustList))
		if th.ClearTID != 0 {
			recordClearTID(nt, t.MemoryManager(), hostarch.Addr(th.ClearTID))
		}
		resendPending(t, nt, th.TID, false, 0, th.SigPending&^p.proc.Signals.Pending, exactPending(p.proc))
	}
	p.newTIDs[th.TID] = tid
	t.Debugf("ckpt: thaw: thread %d of the image (tid %d) is now tid %d", i, th.TID, tid)
	return nil
}
