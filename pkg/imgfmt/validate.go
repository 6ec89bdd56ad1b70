package imgfmt

import (
	"fmt"
	"strings"
)

// Parts of a Process that validation errors name; the decoder maps each to the image offset of the
// note or program header it came from.
const (
	partProcess = "process"
	partThread  = "thread"
	partMapping = "mapping"
	partFile    = "fd"
	partSignals = "signals"
	partVM      = "vm"
	partAuxv    = "auxv"
	partSiginfo = "siginfo"
	partCwd     = "cwd"
	partObject  = "object"
	partParent  = "parent"
)

// locator returns the image offset of part number idx, or -1.
type locator func(part string, idx int) int64

func noLocation(string, int) int64 { return -1 }

// Validate checks that p can be encoded and that a thaw can rely on it: counts within the limits,
// mappings page-aligned, sorted, non-overlapping and inside the user range, each kind with what it
// needs, fds unique and sorted, strings within their lengths. Encode calls it first; the decoders
// call it on everything they return. Errors are *FormatError with Offset -1.
func Validate(p *Process) error {
	return validate(p, noLocation)
}

func validate(p *Process, loc locator) error {
	fail := func(part string, idx int, format string, args ...any) error {
		what := part
		if idx >= 0 {
			what = fmt.Sprintf("%s %d", part, idx)
		}
		return formatErrorf(loc(part, idx), "%s: %s", what, fmt.Sprintf(format, args...))
	}
	if p == nil {
		return formatErrorf(-1, "nil process")
	}

	// Identity and credentials.
	if err := checkString(p.Info.Name, MaxNameLen); err != "" {
		return fail(partProcess, -1, "name: %s", err)
	}
	if err := checkString(p.Info.Args, MaxArgsLen); err != "" {
		return fail(partProcess, -1, "args: %s", err)
	}
	if err := checkString(p.Info.Platform, MaxPlatformLen); err != "" {
		return fail(partProcess, -1, "platform: %s", err)
	}
	if p.Info.PID <= 0 {
		return fail(partProcess, -1, "pid %d is not positive", p.Info.PID)
	}
	if p.Info.PPID < 0 || p.Info.PGID < 0 || p.Info.SID < 0 {
		return fail(partProcess, -1, "negative ppid, pgid or sid")
	}
	if len(p.Creds.Groups) > MaxGroups {
		return fail(partProcess, -1, "%d supplementary groups exceed %d", len(p.Creds.Groups), MaxGroups)
	}

	// Threads.
	if len(p.Threads) == 0 {
		return fail(partThread, -1, "no threads")
	}
	if len(p.Threads) > MaxThreads {
		return fail(partThread, -1, "%d threads exceed %d", len(p.Threads), MaxThreads)
	}
	tids := make(map[int32]int, len(p.Threads))
	for i := range p.Threads {
		t := &p.Threads[i]
		if t.TID <= 0 {
			return fail(partThread, i, "tid %d is not positive", t.TID)
		}
		if j, dup := tids[t.TID]; dup {
			return fail(partThread, i, "tid %d repeats thread %d", t.TID, j)
		}
		tids[t.TID] = i
		if len(t.FPRegs) != 0 && len(t.FPRegs) != fxsaveSize {
			return fail(partThread, i, "FP register area is %d bytes, want 0 or %d", len(t.FPRegs), fxsaveSize)
		}
		if n := len(t.XState); n != 0 && (n < xstateMinSize || n > MaxXStateSize) {
			return fail(partThread, i, "XSAVE area is %d bytes, want 0 or %d..%d", n, xstateMinSize, MaxXStateSize)
		}
		if t.AltStack.Addr+t.AltStack.Size < t.AltStack.Addr {
			return fail(partThread, i, "alternate stack wraps around")
		}
	}

	// Mappings.
	if len(p.Mappings) > MaxMappings {
		return fail(partMapping, -1, "%d mappings exceed %d", len(p.Mappings), MaxMappings)
	}
	for i := range p.Mappings {
		m := &p.Mappings[i]
		if m.Start%PageSize != 0 || m.End%PageSize != 0 {
			return fail(partMapping, i, "[%#x, %#x) is not page-aligned", m.Start, m.End)
		}
		if m.Start >= m.End {
			return fail(partMapping, i, "[%#x, %#x) is empty or inverted", m.Start, m.End)
		}
		if m.End > MaxUserAddress {
			return fail(partMapping, i, "[%#x, %#x) ends above the user address range %#x", m.Start, m.End, uint64(MaxUserAddress))
		}
		if i > 0 && m.Start < p.Mappings[i-1].End {
			return fail(partMapping, i, "[%#x, %#x) overlaps or precedes mapping %d ending at %#x", m.Start, m.End, i-1, p.Mappings[i-1].End)
		}
		if m.Prot&^(ProtRead|ProtWrite|ProtExec) != 0 {
			return fail(partMapping, i, "unknown protection bits %#x", uint32(m.Prot))
		}
		if err := checkString(m.Name, MaxPathLen); err != "" {
			return fail(partMapping, i, "name: %s", err)
		}
		if m.HeaderPage && m.Kind != MapReference {
			return fail(partMapping, i, "only a reference mapping stores a header page (kind %d)", m.Kind)
		}
		switch m.Kind {
		case MapContent, MapZero:
		case MapObject:
			if !m.Shared || m.File != nil {
				return fail(partMapping, i, "an object mapping is shared and has no file handle")
			}
		case MapReference:
			if m.File == nil {
				return fail(partMapping, i, "stored by reference but has no file handle")
			}
			if m.HeaderPage && m.FileOffset != 0 {
				return fail(partMapping, i, "a stored header page needs file offset 0, not %#x", m.FileOffset)
			}
		default:
			return fail(partMapping, i, "unknown kind %d", m.Kind)
		}
		if m.File != nil {
			if err := checkHandle(m.File); err != "" {
				return fail(partMapping, i, "file handle: %s", err)
			}
			if m.FileOffset%PageSize != 0 {
				return fail(partMapping, i, "file offset %#x is not page-aligned", m.FileOffset)
			}
		} else if m.Kind == MapObject {
			if m.FileOffset%PageSize != 0 {
				return fail(partMapping, i, "file offset %#x is not page-aligned", m.FileOffset)
			}
		} else if m.FileOffset != 0 {
			return fail(partMapping, i, "anonymous mapping with file offset %#x", m.FileOffset)
		}
	}

	// File descriptors.
	if len(p.Files) > MaxFDs {
		return fail(partFile, -1, "%d fds exceed %d", len(p.Files), MaxFDs)
	}
	for i := range p.Files {
		f := &p.Files[i]
		if f.FD < 0 || f.FD >= MaxFDs {
			return fail(partFile, i, "fd %d out of range [0, %d)", f.FD, MaxFDs)
		}
		if i > 0 && f.FD <= p.Files[i-1].FD {
			return fail(partFile, i, "fd %d is not above the previous fd %d (duplicate or unsorted)", f.FD, p.Files[i-1].FD)
		}
		if f.Kind < FileRegular || f.Kind > FileOther {
			return fail(partFile, i, "fd %d: unknown kind %d", f.FD, f.Kind)
		}
		if f.Offset < -1 {
			return fail(partFile, i, "fd %d: offset %d is negative", f.FD, f.Offset)
		}
		if err := checkString(f.Desc, MaxPathLen); err != "" {
			return fail(partFile, i, "fd %d: description: %s", f.FD, err)
		}
		if f.Handle != nil {
			if err := checkHandle(f.Handle); err != "" {
				return fail(partFile, i, "fd %d: file handle: %s", f.FD, err)
			}
		}
	}

	// Signals.
	if s := p.Signals.PdeathSig; s < 0 || s > numSignals {
		return fail(partSignals, -1, "pdeathsig %d out of range", s)
	}
	for i, it := range p.Signals.Itimers {
		if it.IntervalNano < 0 || it.ValueNano < 0 {
			return fail(partSignals, -1, "itimer %d has a negative time", i)
		}
	}

	// VM info.
	vm := &p.VM
	for _, r := range []struct {
		name       string
		start, end uint64
	}{
		{"brk", vm.BrkStart, vm.BrkEnd},
		{"argv", vm.ArgvStart, vm.ArgvEnd},
		{"envv", vm.EnvvStart, vm.EnvvEnd},
	} {
		if r.start > r.end || r.end > MaxUserAddress {
			return fail(partVM, -1, "%s range [%#x, %#x) is inverted or outside the user range", r.name, r.start, r.end)
		}
	}
	if vm.VDSOBase%PageSize != 0 || vm.VDSOSize%PageSize != 0 {
		return fail(partVM, -1, "vDSO [%#x, +%#x) is not page-aligned", vm.VDSOBase, vm.VDSOSize)
	}
	if vm.VDSOSize > MaxUserAddress || vm.VDSOBase > MaxUserAddress-vm.VDSOSize {
		return fail(partVM, -1, "vDSO [%#x, +%#x) is outside the user range", vm.VDSOBase, vm.VDSOSize)
	}
	if vm.VDSOSize != 0 {
		for i := range p.Mappings {
			m := &p.Mappings[i]
			if m.Start < vm.VDSOBase+vm.VDSOSize && vm.VDSOBase < m.End {
				return fail(partVM, -1, "vDSO [%#x, %#x) overlaps mapping %d", vm.VDSOBase, vm.VDSOBase+vm.VDSOSize, i)
			}
		}
	}
	if vm.Exe != nil {
		if err := checkHandle(vm.Exe); err != "" {
			return fail(partVM, -1, "executable handle: %s", err)
		}
	}

	// Auxiliary vector and siginfo.
	if len(p.Auxv) > MaxAuxv {
		return fail(partAuxv, -1, "%d entries exceed %d", len(p.Auxv), MaxAuxv)
	}
	for i, a := range p.Auxv {
		if a.Key == 0 {
			return fail(partAuxv, -1, "entry %d is AT_NULL before the end", i)
		}
	}
	if p.CoreDump && p.SigInfo == nil {
		return fail(partSiginfo, -1, "a core dump needs the killing signal")
	}
	if si := p.SigInfo; si != nil {
		if si.Signo <= 0 || si.Signo > numSignals {
			return fail(partSiginfo, -1, "signal %d out of range", si.Signo)
		}
		if HasAddr(si.Signo, si.Code) && (si.PID != 0 || si.UID != 0) {
			return fail(partSiginfo, -1, "signal %d code %d carries a fault address, not a sender (pid %d uid %d)", si.Signo, si.Code, si.PID, si.UID)
		}
		if !HasAddr(si.Signo, si.Code) && si.Addr != 0 {
			return fail(partSiginfo, -1, "signal %d code %d carries a sender, not a fault address (%#x)", si.Signo, si.Code, si.Addr)
		}
	}
	if h := p.Cwd; h != nil {
		if err := checkHandle(h); err != "" {
			return fail(partCwd, -1, "working directory handle: %s", err)
		}
		if !strings.HasPrefix(h.Path, "/") {
			return fail(partCwd, -1, "working directory path %q is not absolute", h.Path)
		}
	}
	if err := validateObjects(p, fail); err != nil {
		return err
	}
	if err := validateIncremental(p, fail); err != nil {
		return err
	}
	return checkObjectMappings(p, fail)
}

// checkString returns why s is not acceptable as a string of at most max bytes, or "".
func checkString(s string, max int) string {
	if len(s) > max {
		return fmt.Sprintf("%d bytes exceed %d", len(s), max)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "contains a NUL byte"
	}
	return ""
}

// checkHandle returns why h is not an acceptable file handle, or "".
func checkHandle(h *FileHandle) string {
	if h.Path == "" {
		return "empty path"
	}
	if err := checkString(h.Path, MaxPathLen); err != "" {
		return "path: " + err
	}
	return ""
}
