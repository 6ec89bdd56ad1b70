package ckpt

import (
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	sys "gvisor.dev/gvisor/pkg/sentry/syscalls/linux"
)

func TestCkptActionOf(t *testing.T) {
	def := DefaultPolicy()
	custom := def
	custom.Signal = 40
	off := def
	off.Signal = 0
	for _, c := range []struct {
		p    Policy
		sig  linux.Signal
		want ckptAction
	}{
		{def, SIGCKPT, ckptContinue},
		{def, SIGCKPTEXIT, ckptExit},
		{def, 40, noCkpt},
		{def, linux.SIGTERM, noCkpt},
		{custom, 40, ckptContinue},
		{custom, SIGCKPT, noCkpt},
		{custom, SIGCKPTEXIT, ckptExit},
		{off, SIGCKPT, noCkpt},
		{off, SIGCKPTEXIT, noCkpt},
	} {
		if got := ckptActionOf(c.p, c.sig); got != c.want {
			t.Errorf("ckptActionOf(signal %d, %d) = %v, want %v", c.p.Signal, c.sig, got, c.want)
		}
	}
}

// TestSignalSyscallsWrapped checks that the six signal-sending syscalls dispatch to the wrappers,
// not to gVisor's implementations, and keep their names.
func TestSignalSyscallsWrapped(t *testing.T) {
	for sysno, orig := range map[uintptr]kernel.SyscallFn{
		unix.SYS_KILL:              sys.Kill,
		unix.SYS_TKILL:             sys.Tkill,
		unix.SYS_TGKILL:            sys.Tgkill,
		unix.SYS_RT_SIGQUEUEINFO:   sys.RtSigqueueinfo,
		unix.SYS_RT_TGSIGQUEUEINFO: sys.RtTgsigqueueinfo,
		unix.SYS_PIDFD_SEND_SIGNAL: sys.PIDFDSendSignal,
	} {
		fn := sys.AMD64.Lookup(sysno)
		if fn == nil {
			t.Errorf("syscall %d: not dispatched", sysno)
			continue
		}
		if reflect.ValueOf(fn).Pointer() == reflect.ValueOf(orig).Pointer() {
			t.Errorf("syscall %d dispatches to gVisor's own implementation: not wrapped", sysno)
		}
		if name := sys.AMD64.Table[sysno].Name; name == "" {
			t.Errorf("syscall %d lost its name", sysno)
		}
	}
}
