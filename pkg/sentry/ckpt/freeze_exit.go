package ckpt

import (
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/sentry/arch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// The sandbox ends when its init process exits, and a background image write (SIGCKPT,
// CKPT_FREEZE_ASYNC) ends with it, leaving no image. So exit_group of the sandbox's init waits
// until no such write is in flight (killable: SIGKILL ends the wait). Death by a signal does not
// go through exit_group and is not delayed (docs/notes-pause.md).

var _ = wrapSyscall(unix.SYS_EXIT_GROUP, wrapExitGroup)

// detachedWrites counts the background writes in flight that no task waits for.
var detachedWrites atomic.Int64

// detachedPoll is how often an exiting init checks whether the background writes are over.
const detachedPoll = 10 * time.Millisecond

// wrapExitGroup makes exit_group of the sandbox's init wait for the background writes.
func wrapExitGroup(s kernel.Syscall) kernel.Syscall {
	orig := s.Fn
	s.Fn = func(t *kernel.Task, sysno uintptr, args arch.SyscallArguments) (uintptr, *kernel.SyscallControl, error) {
		if detachedWrites.Load() > 0 && t.ThreadGroup() == t.Kernel().GlobalInit() {
			t.Infof("ckpt: init exits: waiting for %d background checkpoint writes first", detachedWrites.Load())
			for detachedWrites.Load() > 0 && sleepUnlessKilled(t, detachedPoll) {
			}
		}
		return orig(t, sysno, args)
	}
	return s
}

// goDetached runs f on a goroutine of its own as a detached background write.
func goDetached(f func()) {
	detachedWrites.Add(1)
	go func() {
		defer detachedWrites.Add(-1)
		f()
	}()
}
