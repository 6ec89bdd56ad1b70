package ckpt

import (
	"testing"

	"gvisor.dev/gvisor/pkg/sentry/arch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/syscalls/linux"
)

// TestRegistered checks that init put sys_checkpoint into the table the sentry dispatches from,
// including its lookup array (editing Table without Init would leave Lookup nil).
func TestRegistered(t *testing.T) {
	if fn := linux.AMD64.Lookup(SYS_checkpoint); fn == nil {
		t.Fatalf("linux.AMD64.Lookup(%d) = nil: sys_checkpoint not dispatched", SYS_checkpoint)
	}
	sc, ok := linux.AMD64.Table[SYS_checkpoint]
	if !ok || sc.Name != "sys_checkpoint" || sc.SupportLevel != kernel.SupportFull {
		t.Errorf("Table[%d] = %+v, %v", SYS_checkpoint, sc, ok)
	}
}

// TestInstallRefusesTakenNumber checks install on a table that already has the number.
func TestInstallRefusesTakenNumber(t *testing.T) {
	st := &kernel.SyscallTable{Table: map[uintptr]kernel.Syscall{SYS_checkpoint: {Name: "other"}}}
	if err := install(st); err == nil {
		t.Error("install over an existing entry succeeded")
	}
}

// TestInstallWrapsAndDispatches checks that pending wraps are applied and Init is called, on a
// private table so the global one is untouched.
func TestInstallWrapsAndDispatches(t *testing.T) {
	const sysno = 39 // getpid
	orig := kernel.Syscall{Name: "getpid", Fn: func(*kernel.Task, uintptr, arch.SyscallArguments) (uintptr, *kernel.SyscallControl, error) {
		return 1, nil, nil
	}}
	st := &kernel.SyscallTable{Table: map[uintptr]kernel.Syscall{sysno: orig}}
	saved := pendingWraps
	defer func() { pendingWraps = saved }()
	wrapped := false
	pendingWraps = []syscallWrap{{sysno: sysno, wrap: func(o kernel.Syscall) kernel.Syscall {
		wrapped = o.Name == "getpid"
		o.Name = "getpid_wrapped"
		return o
	}}}
	if err := install(st); err != nil {
		t.Fatal(err)
	}
	if !wrapped || st.Table[sysno].Name != "getpid_wrapped" {
		t.Errorf("wrap not applied: %+v", st.Table[sysno])
	}
	if st.Lookup(SYS_checkpoint) == nil || st.Lookup(sysno) == nil {
		t.Error("install did not rebuild the lookup table")
	}
	pendingWraps = []syscallWrap{{sysno: 12345, wrap: func(o kernel.Syscall) kernel.Syscall { return o }}}
	st2 := &kernel.SyscallTable{Table: map[uintptr]kernel.Syscall{}}
	if err := install(st2); err == nil {
		t.Error("install wrapped a syscall that is not in the table")
	}
}
