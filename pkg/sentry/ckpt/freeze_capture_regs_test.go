package ckpt

import (
	"testing"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/sentry/arch"
)

// errnoReturn is rax as a syscall leaves it when it returns -errno.
func errnoReturn(errno int64) uint64 { return uint64(-errno) }

func TestFixupRestart(t *testing.T) {
	const (
		rip     = 0x401002 // just after a 2-byte syscall instruction at 0x401000
		origRax = 35       // nanosleep
	)
	tests := []struct {
		name             string
		rax              uint64
		wantRip, wantRax uint64
	}{
		{"ERESTARTSYS restarts", errnoReturn(512), rip - 2, origRax},
		{"ERESTARTNOINTR restarts", errnoReturn(513), rip - 2, origRax},
		{"ERESTARTNOHAND restarts", errnoReturn(514), rip - 2, origRax},
		{"ERESTART_RESTARTBLOCK becomes EINTR", errnoReturn(516), rip, errnoReturn(int64(unix.EINTR))},
		{"a plain error stays", errnoReturn(int64(unix.EAGAIN)), rip, errnoReturn(int64(unix.EAGAIN))},
		{"a result stays", 42, rip, 42},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &arch.Context64{}
			c.Regs.Rip, c.Regs.Rax, c.Regs.Orig_rax = rip, tc.rax, origRax
			fixupRestart(c)
			if c.Regs.Rip != tc.wantRip || c.Regs.Rax != tc.wantRax {
				t.Errorf("rip, rax = %#x, %#x; want %#x, %#x", c.Regs.Rip, c.Regs.Rax, tc.wantRip, tc.wantRax)
			}
		})
	}
}

func TestRegsOfKeepsEveryRegister(t *testing.T) {
	var r linux.PtraceRegs
	vals := []*uint64{&r.R15, &r.R14, &r.R13, &r.R12, &r.Rbp, &r.Rbx, &r.R11, &r.R10, &r.R9, &r.R8,
		&r.Rax, &r.Rcx, &r.Rdx, &r.Rsi, &r.Rdi, &r.Orig_rax, &r.Rip, &r.Cs, &r.Eflags, &r.Rsp, &r.Ss,
		&r.Fs_base, &r.Gs_base, &r.Ds, &r.Es, &r.Fs, &r.Gs}
	for i, v := range vals {
		*v = uint64(i + 1)
	}
	g := regsOf(&r)
	got := []uint64{g.R15, g.R14, g.R13, g.R12, g.Rbp, g.Rbx, g.R11, g.R10, g.R9, g.R8,
		g.Rax, g.Rcx, g.Rdx, g.Rsi, g.Rdi, g.OrigRax, g.Rip, g.Cs, g.Eflags, g.Rsp, g.Ss,
		g.FsBase, g.GsBase, g.Ds, g.Es, g.Fs, g.Gs}
	for i, v := range got {
		if v != uint64(i+1) {
			t.Errorf("register %d (user_regs_struct order) = %d, want %d", i, v, i+1)
		}
	}
}
