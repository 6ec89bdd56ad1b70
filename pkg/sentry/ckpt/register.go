package ckpt

import (
	"fmt"

	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/syscalls"
	"gvisor.dev/gvisor/pkg/sentry/syscalls/linux"
)

// syscallWrap is a pending change to an existing entry of the syscall table.
type syscallWrap struct {
	sysno uintptr
	wrap  func(orig kernel.Syscall) kernel.Syscall
}

// pendingWraps collects the wraps requested by wrapSyscall. It is appended to only during package
// variable initialization and read once by init; it is never changed afterwards.
var pendingWraps []syscallWrap

// wrapSyscall asks init to replace the amd64 table entry of sysno by wrap(original entry), before
// the table's single Init call. Other files of this package use it from a package-level variable
// initializer, which Go runs before any init function whatever the file order:
//
//	var _ = wrapSyscall(unix.SYS_KILL, wrapKill)
//
// The returned value carries no meaning; it only makes that form possible.
func wrapSyscall(sysno uintptr, wrap func(orig kernel.Syscall) kernel.Syscall) struct{} {
	pendingWraps = append(pendingWraps, syscallWrap{sysno: sysno, wrap: wrap})
	return struct{}{}
}

// init installs sys_checkpoint and the requested wraps in gVisor's amd64 syscall table. It runs in
// every process of the binary, including the sentry (`runsc-ckpt boot`), always after the init of
// package syscalls/linux that this package imports.
func init() {
	if err := install(linux.AMD64); err != nil {
		panic(fmt.Sprintf("runsc-ckpt: installing checkpoint syscalls: %v", err))
	}
}

// install adds SYS_checkpoint and pendingWraps to st and rebuilds st's lookup table.
//
// Preconditions: no task is running yet (SyscallTable.Init is not safe against concurrent
// dispatch); install is called once per table.
func install(st *kernel.SyscallTable) error {
	if old, ok := st.Table[SYS_checkpoint]; ok {
		return fmt.Errorf("syscall %d is already taken by %q", SYS_checkpoint, old.Name)
	}
	st.Table[SYS_checkpoint] = syscalls.Supported("sys_checkpoint", sysCheckpoint)
	for _, w := range pendingWraps {
		orig, ok := st.Table[w.sysno]
		if !ok {
			return fmt.Errorf("cannot wrap syscall %d: not in the table", w.sysno)
		}
		st.Table[w.sysno] = w.wrap(orig)
	}
	// Editing Table alone does nothing: dispatch uses the lookup array that Init rebuilds.
	st.Init()
	return nil
}
