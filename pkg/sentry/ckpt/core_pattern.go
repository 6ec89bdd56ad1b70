package ckpt

import (
	"fmt"
	"strconv"
	"strings"

	"gvisor.dev/gvisor/pkg/abi/linux"
)

// DefaultCorePattern is the core file name when nothing is configured: "core" in the crashing
// process's working directory, as Linux's default kernel.core_pattern.
const DefaultCorePattern = "core"

// ValidateCorePattern checks a core-pattern: empty (no core files), or a name of at most
// PATH_MAX bytes without NUL in which every '%' starts one of Linux's core_pattern directives
// that runsc-ckpt implements (%e %p %u %g %s %t %h %%). A leading '|' (Linux pipes the core to a
// program) is refused: the sandbox has no usermode helper to run.
func ValidateCorePattern(pat string) error {
	if pat == "" {
		return nil
	}
	if len(pat) >= linux.PATH_MAX {
		return fmt.Errorf("core-pattern %q: longer than PATH_MAX (%d)", pat, linux.PATH_MAX)
	}
	if strings.IndexByte(pat, 0) >= 0 {
		return fmt.Errorf("core-pattern %q: contains a NUL byte", pat)
	}
	if pat[0] == '|' {
		return fmt.Errorf("core-pattern %q: piping a core to a program is not supported", pat)
	}
	for i := 0; i < len(pat); i++ {
		if pat[i] != '%' {
			continue
		}
		if i+1 == len(pat) {
			return fmt.Errorf("core-pattern %q: ends with a lone %%; write %%%% for a percent sign", pat)
		}
		switch pat[i+1] {
		case 'e', 'p', 'u', 'g', 's', 't', 'h', '%':
			i++
		default:
			return fmt.Errorf("core-pattern %q: unknown directive %%%c at byte %d (known: %%e name, %%p pid, %%u uid, %%g gid, %%s signal, %%t time, %%h hostname, %%%%)", pat, pat[i+1], i)
		}
	}
	return nil
}

// CoreVars are the values a core-pattern's directives expand to.
type CoreVars struct {
	Name     string // %e: the process name (comm)
	PID      int32  // %p: pid in the process's PID namespace
	UID, GID uint32 // %u, %g: real uid and gid
	Signal   int    // %s: the signal that killed it
	Time     int64  // %t: the time of the dump, seconds since the epoch
	Hostname string // %h: the UTS namespace's hostname
}

// ExpandCorePattern expands a validated core-pattern. As Linux does for %e and %h, a '/' in the
// name or hostname becomes '!', so that they cannot add directories.
func ExpandCorePattern(pat string, v CoreVars) string {
	var b strings.Builder
	for i := 0; i < len(pat); i++ {
		c := pat[i]
		if c != '%' || i+1 == len(pat) {
			b.WriteByte(c)
			continue
		}
		i++
		switch pat[i] {
		case 'e':
			b.WriteString(strings.ReplaceAll(v.Name, "/", "!"))
		case 'p':
			b.WriteString(strconv.FormatInt(int64(v.PID), 10))
		case 'u':
			b.WriteString(strconv.FormatUint(uint64(v.UID), 10))
		case 'g':
			b.WriteString(strconv.FormatUint(uint64(v.GID), 10))
		case 's':
			b.WriteString(strconv.Itoa(v.Signal))
		case 't':
			b.WriteString(strconv.FormatInt(v.Time, 10))
		case 'h':
			b.WriteString(strings.ReplaceAll(v.Hostname, "/", "!"))
		case '%':
			b.WriteByte('%')
		}
	}
	return b.String()
}
