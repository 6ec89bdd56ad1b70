package ckpt

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/vfsfh/sentryfh"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/usermem"
)

// psargsMax is the size of NT_PRPSINFO's pr_psargs without its terminating NUL.
const psargsMax = 79

// captureInfo records who the process is: name, arguments, ids (in the process's own PID
// namespace), the freeze time and the platform.
//
// Preconditions: running on t's task goroutine.
func captureInfo(t *kernel.Task) imgfmt.ProcessInfo {
	tg := t.ThreadGroup()
	ns := tg.PIDNamespace()
	info := imgfmt.ProcessInfo{
		Name:           processName(t),
		Args:           readArgs(t),
		PID:            int32(ns.IDOfThreadGroup(tg)),
		FreezeTimeNano: t.Kernel().RealtimeClock().Now().Nanoseconds(),
		Platform:       platformName(t),
	}
	if leader := tg.Leader(); leader != nil {
		if parent := leader.Parent(); parent != nil {
			info.PPID = int32(ns.IDOfThreadGroup(parent.ThreadGroup()))
		}
	}
	if pg := tg.ProcessGroup(); pg != nil {
		info.PGID = int32(ns.IDOfProcessGroup(pg))
	}
	if s := tg.Session(); s != nil {
		info.SID = int32(ns.IDOfSession(s))
	}
	return info
}

// processName returns the process's name: its leader's comm (as Linux's NT_PRPSINFO and
// DragonFly's p_comm), or t's own if the leader is gone. Threads may have names of their own
// (pthread_setname_np); the image and the ckpt-file are named after the process.
func processName(t *kernel.Task) string {
	if leader := t.ThreadGroup().Leader(); leader != nil && leader.ExitState() == kernel.TaskExitNone {
		return leader.Name()
	}
	return t.Name()
}

// readArgs returns the process's argv joined by spaces, truncated to pr_psargs' size.
func readArgs(t *kernel.Task) string {
	m := t.MemoryManager()
	start, end := m.ArgvStart(), m.ArgvEnd()
	if end <= start {
		return ""
	}
	n := min(int(end-start), psargsMax+1)
	buf := make([]byte, n)
	got, _ := m.CopyIn(t, start, buf, usermem.IOOpts{IgnorePermissions: true})
	buf = bytes.TrimRight(buf[:got], "\x00")
	s := strings.ReplaceAll(string(buf), "\x00", " ")
	if len(s) > psargsMax {
		s = s[:psargsMax]
	}
	return s
}

// platformName returns the gVisor platform's name ("systrap", "ptrace", ...), from its Go type.
func platformName(t *kernel.Task) string {
	typ := reflect.TypeOf(t.Kernel().Platform)
	if typ == nil {
		return ""
	}
	if typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	return strings.ToLower(typ.Name())
}

// captureCreds records the process's credentials as seen in its own user namespace. gVisor keeps no
// separate filesystem ids: they are the effective ids.
func captureCreds(t *kernel.Task) imgfmt.Creds {
	c := t.Credentials()
	ns := c.UserNamespace
	cr := imgfmt.Creds{
		UID:  uint32(c.RealKUID.In(ns).OrOverflow()),
		EUID: uint32(c.EffectiveKUID.In(ns).OrOverflow()),
		SUID: uint32(c.SavedKUID.In(ns).OrOverflow()),
		GID:  uint32(c.RealKGID.In(ns).OrOverflow()),
		EGID: uint32(c.EffectiveKGID.In(ns).OrOverflow()),
		SGID: uint32(c.SavedKGID.In(ns).OrOverflow()),
	}
	cr.FSUID, cr.FSGID = cr.EUID, cr.EGID
	for _, g := range c.ExtraKGIDs {
		cr.Groups = append(cr.Groups, uint32(g.In(ns).OrOverflow()))
	}
	return cr
}

// captureSignals records the process-wide signal state: all 64 actions, the signals pending on the
// whole thread group, the three itimers and the parent-death signal.
//
// gVisor exposes only each thread's union of thread and group pending signals; the group set is
// taken as the signals pending on every thread (exact for one thread, a subset otherwise).
func captureSignals(t *kernel.Task, threads []imgfmt.Thread) (imgfmt.Signals, error) {
	var s imgfmt.Signals
	tg := t.ThreadGroup()
	for sig := 1; sig <= linux.SignalMaximum; sig++ {
		act, err := tg.SetSigAction(linux.Signal(sig), nil)
		if err != nil {
			return s, fmt.Errorf("reading the action of signal %d: %w", sig, err)
		}
		s.Actions[sig-1] = imgfmt.SigAction{Handler: act.Handler, Flags: act.Flags, Restorer: act.Restorer, Mask: uint64(act.Mask)}
	}
	if len(threads) > 0 {
		s.Pending = ^uint64(0)
		for i := range threads {
			s.Pending &= threads[i].SigPending
		}
	}
	for i, id := range []int32{linux.ITIMER_REAL, linux.ITIMER_VIRTUAL, linux.ITIMER_PROF} {
		v, err := t.Getitimer(id)
		if err != nil {
			return s, fmt.Errorf("reading itimer %d: %w", id, err)
		}
		s.Itimers[i] = imgfmt.Itimer{IntervalNano: v.Interval.ToNsecCapped(), ValueNano: v.Value.ToNsecCapped()}
	}
	s.PdeathSig = int32(t.ParentDeathSignal())
	return s, nil
}

// captureVM records the address-space metadata that is not a mapping (brk, argv and envp ranges,
// the executable) and the auxiliary vector. The vDSO fields are filled by captureMappings.
func captureVM(t *kernel.Task, mappings []imgfmt.Mapping, vm *imgfmt.VMInfo) []imgfmt.AuxEntry {
	m := t.MemoryManager()
	// Brk with an address below the break's start changes nothing and returns the current end
	// (with EINVAL). gVisor has no getter for the break; address 0 is below the start of every
	// break, since the ELF loader (and thaw, from an image's BrkStart) set it to a non-zero address.
	brkEnd, _ := m.Brk(t, 0)
	vm.BrkEnd = uint64(brkEnd)
	vm.BrkStart = vm.BrkEnd
	for i := range mappings {
		if mappings[i].Name == "[heap]" {
			vm.BrkStart = mappings[i].Start
			break
		}
	}
	vm.ArgvStart, vm.ArgvEnd = uint64(m.ArgvStart()), uint64(m.ArgvEnd())
	vm.EnvvStart, vm.EnvvEnd = uint64(m.EnvvStart()), uint64(m.EnvvEnd())
	if exe := m.Executable(); exe != nil {
		if h, err := sentryfh.FromFD(t, exe); err == nil {
			vm.Exe = h.ToImage()
		} else {
			t.Debugf("ckpt: no handle for the executable: %v", err)
		}
		exe.DecRef(t)
	}
	var auxv []imgfmt.AuxEntry
	for _, e := range m.Auxv() {
		if e.Key == linux.AT_NULL {
			break
		}
		auxv = append(auxv, imgfmt.AuxEntry{Key: e.Key, Value: uint64(e.Value)})
	}
	return auxv
}
