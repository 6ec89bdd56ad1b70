package ckpt

import (
	"runtime"
	"sync"
	"sync/atomic"
	"weak"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/sentry/arch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/mm"
)

// The signal frames of a thaw's extra threads live in a scratch mapping that the new threads read
// with their first instruction, rt_sigreturn, at some point after thaw's commit has returned. To
// unmap the scratch once the last of them has read its frame, rt_sigreturn is wrapped: a call whose
// stack pointer is a registered frame (in the same address space) marks that frame consumed, and
// the call that consumes the last frame of a scratch unmaps it. While no thaw frames are pending
// the wrapper costs one atomic load. A thread killed before its first instruction leaves its
// scratch mapped (named [anon:runsc-ckpt-thaw]; a later thaw skips such a mapping) and its frame
// registered until the address space is gone.

var _ = wrapSyscall(unix.SYS_RT_SIGRETURN, wrapThawSigreturn)

// thawFrames registers the pending frames of all thaws in the sandbox. It is process-global
// because the syscall table it is fed from is.
var thawFrames = thawFrameRegistry{bySlot: make(map[thawFrameKey]*thawScratch)}

// thawFrameRegistry is the type of thawFrames.
type thawFrameRegistry struct {
	// pending counts registered frames; read without mu on every rt_sigreturn.
	pending atomic.Int32
	mu      sync.Mutex
	// bySlot maps a frame to its scratch. Weak address-space keys keep no address space alive.
	// +checklocks:mu
	bySlot map[thawFrameKey]*thawScratch
}

// thawFrameKey identifies one frame: the address space and the frame's address (the stack pointer
// of the rt_sigreturn that reads it).
type thawFrameKey struct {
	mm   weak.Pointer[mm.MemoryManager]
	slot hostarch.Addr
}

// thawScratch is one thaw's scratch mapping and how many of its frames are still unread.
type thawScratch struct {
	ar hostarch.AddrRange
	// left counts the frames not read yet (see doc.go on the annotation on its line).
	// +checklocks:thawFrames.mu
	left int // +checklocksfail:1=may require checklocks annotation for mu
}

// registerThawFrames registers the frames at slots (in m, inside ar) as pending; the scratch ar is
// unmapped when all have been read.
func registerThawFrames(m *mm.MemoryManager, ar hostarch.AddrRange, slots []hostarch.Addr) {
	if len(slots) == 0 {
		return
	}
	s := &thawScratch{ar: ar, left: len(slots)}
	wm := weak.Make(m)
	thawFrames.mu.Lock()
	for _, slot := range slots {
		thawFrames.bySlot[thawFrameKey{mm: wm, slot: slot}] = s
	}
	thawFrames.mu.Unlock()
	thawFrames.pending.Add(int32(len(slots)))
	// Frames never read (their thread was killed first) are forgotten with their address space,
	// so that rt_sigreturn returns to its fast path.
	runtime.AddCleanup(m, forgetThawFrames, wm)
}

// forgetThawFrames drops the registered frames of the (collected) address space wm.
func forgetThawFrames(wm weak.Pointer[mm.MemoryManager]) {
	thawFrames.mu.Lock()
	defer thawFrames.mu.Unlock()
	for k := range thawFrames.bySlot {
		if k.mm == wm {
			delete(thawFrames.bySlot, k)
			thawFrames.pending.Add(-1)
		}
	}
}

// consumeThawFrame marks the frame at sp in address space m read, if it is a registered one, and
// returns the scratch to unmap if it was the last frame of its scratch.
func consumeThawFrame(m *mm.MemoryManager, sp hostarch.Addr) (hostarch.AddrRange, bool) {
	key := thawFrameKey{mm: weak.Make(m), slot: sp}
	thawFrames.mu.Lock()
	defer thawFrames.mu.Unlock()
	s, ok := thawFrames.bySlot[key]
	if !ok {
		return hostarch.AddrRange{}, false
	}
	delete(thawFrames.bySlot, key)
	thawFrames.pending.Add(-1)
	s.left--
	return s.ar, s.left == 0
}

// wrapThawSigreturn wraps rt_sigreturn (see the comment at the top of the file).
func wrapThawSigreturn(s kernel.Syscall) kernel.Syscall {
	orig := s.Fn
	s.Fn = func(t *kernel.Task, sysno uintptr, args arch.SyscallArguments) (uintptr, *kernel.SyscallControl, error) {
		if thawFrames.pending.Load() == 0 {
			return orig(t, sysno, args)
		}
		sp := hostarch.Addr(t.Arch().Stack())
		ret, ctrl, err := orig(t, sysno, args)
		if ar, last := consumeThawFrame(t.MemoryManager(), sp); last {
			// The frame has been read (SignalReturn copied it in): the scratch can go.
			if uerr := t.MemoryManager().MUnmap(t, ar.Start, uint64(ar.Length())); uerr != nil {
				t.Debugf("ckpt: thaw: unmapping the frame scratch %v: %v", ar, uerr)
			}
		}
		return ret, ctrl, err
	}
	return s
}
