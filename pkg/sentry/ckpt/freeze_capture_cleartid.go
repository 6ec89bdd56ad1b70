package ckpt

import (
	"encoding/binary"
	"runtime"
	"sync"
	"weak"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/sentry/arch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/mm"
)

// gVisor keeps each task's clear_child_tid address (set_tid_address, CLONE_CHILD_CLEARTID) but has
// no getter for it. A thawed thread needs it, or pthread_join on it never returns (the kernel clears
// and futex-wakes that word when the thread exits). So the three syscalls that set it are wrapped
// and the address is remembered per task, together with the address space it belongs to: exec
// drops it (Linux's mm_release), and an entry whose address space is no longer the task's is stale.
var (
	_ = wrapSyscall(unix.SYS_SET_TID_ADDRESS, wrapClearTID(setTIDAddressChild))
	_ = wrapSyscall(unix.SYS_CLONE, wrapClearTID(cloneChildClearTID))
	_ = wrapSyscall(unix.SYS_CLONE3, wrapClearTID(clone3ChildClearTID))
)

// clearTIDs maps tasks to their clear_child_tid address. Keys and address spaces are weak pointers,
// so the registry keeps no task or address space alive, and a cleanup removes the entry when its
// task is collected. It is process-global because the syscall table it is fed from is.
var clearTIDs = clearTIDRegistry{m: make(map[weak.Pointer[kernel.Task]]clearTIDEntry)}

// clearTIDRegistry is the type of clearTIDs.
type clearTIDRegistry struct {
	mu sync.Mutex
	// +checklocks:mu
	m map[weak.Pointer[kernel.Task]]clearTIDEntry
}

// clearTIDEntry is one task's clear_child_tid address in one address space.
type clearTIDEntry struct {
	mm   weak.Pointer[mm.MemoryManager]
	addr hostarch.Addr
}

// recordClearTID remembers that task's clear_child_tid is addr in address space m. Thaw calls it
// too after SetClearTID, so a thawed process can be frozen again with its threads' addresses.
func recordClearTID(task *kernel.Task, m *mm.MemoryManager, addr hostarch.Addr) {
	key := weak.Make(task)
	clearTIDs.mu.Lock()
	_, known := clearTIDs.m[key]
	clearTIDs.m[key] = clearTIDEntry{mm: weak.Make(m), addr: addr}
	clearTIDs.mu.Unlock()
	if !known {
		runtime.AddCleanup(task, func(k weak.Pointer[kernel.Task]) {
			clearTIDs.mu.Lock()
			delete(clearTIDs.m, k)
			clearTIDs.mu.Unlock()
		}, key)
	}
}

// clearTIDOf returns the clear_child_tid address of task in its current address space m, or 0.
func clearTIDOf(task *kernel.Task, m *mm.MemoryManager) uint64 {
	clearTIDs.mu.Lock()
	defer clearTIDs.mu.Unlock()
	e, ok := clearTIDs.m[weak.Make(task)]
	if !ok || e.mm.Value() != m {
		return 0
	}
	return uint64(e.addr)
}

// clearTIDChild extracts, from a successful call of a wrapped syscall, the task whose
// clear_child_tid was set and the address; ok is false when the call set none.
type clearTIDChild func(t *kernel.Task, args arch.SyscallArguments, ret uintptr) (task *kernel.Task, addr hostarch.Addr, ok bool)

// wrapClearTID returns a wrap that runs the original syscall and then records what child found.
func wrapClearTID(child clearTIDChild) func(kernel.Syscall) kernel.Syscall {
	return func(s kernel.Syscall) kernel.Syscall {
		orig := s.Fn
		s.Fn = func(t *kernel.Task, sysno uintptr, args arch.SyscallArguments) (uintptr, *kernel.SyscallControl, error) {
			ret, ctrl, err := orig(t, sysno, args)
			if err == nil {
				if task, addr, ok := child(t, args, ret); ok {
					var m *mm.MemoryManager
					task.WithMuLocked(func(tt *kernel.Task) { m = tt.MemoryManager() })
					if m != nil {
						recordClearTID(task, m, addr)
					}
				}
			}
			return ret, ctrl, err
		}
		return s
	}
}

// setTIDAddressChild: set_tid_address(tidptr) sets the caller's own address.
func setTIDAddressChild(t *kernel.Task, args arch.SyscallArguments, _ uintptr) (*kernel.Task, hostarch.Addr, bool) {
	return t, args[0].Pointer(), true
}

// cloneChildClearTID: clone(flags, stack, parent_tid, child_tid, tls) on x86-64.
func cloneChildClearTID(t *kernel.Task, args arch.SyscallArguments, ret uintptr) (*kernel.Task, hostarch.Addr, bool) {
	if !recordableClone(args[0].Uint64()) {
		return nil, 0, false
	}
	return newChild(t, ret, args[3].Pointer())
}

// clone3ChildClearTID: clone3(struct clone_args *, size); flags at offset 0, child_tid at 16.
func clone3ChildClearTID(t *kernel.Task, args arch.SyscallArguments, ret uintptr) (*kernel.Task, hostarch.Addr, bool) {
	var b [24]byte
	if _, err := t.CopyInBytes(args[0].Pointer(), b[:]); err != nil {
		return nil, 0, false
	}
	if !recordableClone(binary.LittleEndian.Uint64(b[0:])) {
		return nil, 0, false
	}
	return newChild(t, ret, hostarch.Addr(binary.LittleEndian.Uint64(b[16:])))
}

// recordableClone reports whether a clone with these flags set a clear_child_tid that can be
// recorded after the call. A vfork child may have exec'd (dropping it) by the time the parent
// returns, so it is not recorded.
func recordableClone(flags uint64) bool {
	return flags&linux.CLONE_CHILD_CLEARTID != 0 && flags&linux.CLONE_VFORK == 0
}

// newChild finds the task a clone returned (its tid in the caller's PID namespace).
func newChild(t *kernel.Task, ret uintptr, addr hostarch.Addr) (*kernel.Task, hostarch.Addr, bool) {
	child := t.PIDNamespace().TaskWithID(kernel.ThreadID(ret))
	if child == nil {
		return nil, 0, false
	}
	return child, addr, true
}
