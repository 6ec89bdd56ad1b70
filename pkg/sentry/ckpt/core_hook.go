package ckpt

// How a core dump is triggered without patching gVisor.
//
// gVisor's default signal actions are an unexported table, and the "core" action only terminates
// the thread group (Task.deliverSignal). Just before it does, on the dying task's own goroutine
// and with its address space and threads still alive, deliverSignal emits an UncaughtSignal event
// on the global event channel (eventchannel.Emit). An eventchannel.Emitter added with the
// exported AddEmitter is called synchronously with that event. The event names the task by its
// thread id in the root PID namespace; the TaskSet that resolves it comes from the kernel, which
// gVisor exposes to no global, so a few syscalls every program makes at start (brk, arch_prctl,
// execve, execveat, mmap) are wrapped to remember it. docs/upstream-gaps.md, "Core dumps", has
// the details and the test that breaks if a gVisor bump moves the event.

import (
	"sync/atomic"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/eventchannel"
	"gvisor.dev/gvisor/pkg/goid"
	"gvisor.dev/gvisor/pkg/sentry/arch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	ucspb "gvisor.dev/gvisor/pkg/sentry/kernel/uncaught_signal_go_proto"
)

// sentryKernel is the kernel of this sentry, remembered from the first wrapped syscall; nil until
// then. One sentry process runs one kernel. The core-dump emitter and the kill channel
// (hostkill.go), which run on no task of their own, find it here.
var sentryKernel atomic.Pointer[kernel.Kernel]

var (
	_ = wrapSyscall(unix.SYS_BRK, wrapNoteKernel)
	_ = wrapSyscall(unix.SYS_ARCH_PRCTL, wrapNoteKernel)
	_ = wrapSyscall(unix.SYS_EXECVE, wrapNoteKernel)
	_ = wrapSyscall(unix.SYS_EXECVEAT, wrapNoteKernel)
	_ = wrapSyscall(unix.SYS_MMAP, wrapNoteKernel)
)

// wrapNoteKernel wraps a syscall so that its first call in this sentry remembers the kernel and
// installs the core-dump emitter. After that the wrapper costs one atomic load.
func wrapNoteKernel(orig kernel.Syscall) kernel.Syscall {
	fn := orig.Fn
	orig.Fn = func(t *kernel.Task, sysno uintptr, args arch.SyscallArguments) (uintptr, *kernel.SyscallControl, error) {
		if sentryKernel.Load() == nil && sentryKernel.CompareAndSwap(nil, t.Kernel()) {
			eventchannel.AddEmitter(coreEmitter{})
		}
		return fn(t, sysno, args)
	}
	return orig
}

// coreEmitter receives gVisor's event-channel messages and dumps core for the UncaughtSignal ones
// whose signal's default action is "core".
type coreEmitter struct{}

// Emit implements eventchannel.Emitter.Emit. It never hangs up and never fails: a core that
// cannot be written is logged, and the process dies as it would have.
func (coreEmitter) Emit(msg proto.Message) (bool, error) {
	if ucs, ok := msg.(*ucspb.UncaughtSignal); ok {
		handleUncaughtSignal(ucs)
	}
	return false, nil
}

// Close implements eventchannel.Emitter.Close.
func (coreEmitter) Close() error { return nil }

// coreSignals are the signals whose default action is "core" (signal(7)).
var coreSignals = linux.MakeSignalSet(linux.SIGQUIT, linux.SIGILL, linux.SIGTRAP, linux.SIGABRT,
	linux.SIGBUS, linux.SIGFPE, linux.SIGSEGV, linux.SIGXCPU, linux.SIGXFSZ, linux.SIGSYS)

// handleUncaughtSignal finds the task an UncaughtSignal event is about and, if the signal dumps
// core and the event is emitted on that task's own goroutine (as Task.deliverSignal does), writes
// its core file.
func handleUncaughtSignal(ucs *ucspb.UncaughtSignal) {
	sig := linux.Signal(ucs.SignalNumber)
	if !sig.IsValid() || linux.SignalSetOf(sig)&coreSignals == 0 {
		return
	}
	k := sentryKernel.Load()
	if k == nil {
		return
	}
	t := k.TaskSet().Root.TaskWithID(kernel.ThreadID(ucs.Tid))
	if t == nil || t.GoroutineID() != goid.Get() {
		// Not emitted by the dying task itself: a gVisor that emits the event elsewhere
		// (TestCoreHook fails then) or a message replayed by someone else.
		return
	}
	dumpCore(t, sig, ucs.FaultAddr)
}
