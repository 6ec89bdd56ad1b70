package ckpt

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/abi/linux"
)

// Policy is the sandbox-wide checkpoint policy: who may checkpoint, where a signal-triggered (or
// fd == -1) freeze writes its image, and which signal triggers one. It is set by runsc-ckpt's global
// flags (--ckpt-file, --ckpt-group, --ckpt-signal) and by the root container's OCI annotations
// (AnnotationFile, AnnotationGroup, AnnotationSignal); see docs/policy.md.
type Policy struct {
	// File is the template of the image name used by SIGCKPT and by a freeze with fd == -1:
	// %N is the process name, %P its pid, %U its uid, %% a percent sign. A relative name is
	// resolved against the process's working directory.
	File string

	// Group is the gid (in the sandbox's root user namespace) whose members may checkpoint;
	// -1 allows everybody (the sandbox is the trust boundary).
	Group int32

	// Signal is the signal whose default action is a checkpoint (SIGCKPT unless configured);
	// 0 disables the signal trigger.
	Signal linux.Signal

	// Background is how many images may be written in the background at once, each holding a
	// copy-on-write snapshot of its process's memory while the process runs on: a freeze that
	// would exceed it fails with EAGAIN. 0 turns background writing off: every image is then
	// written while its process stays stopped (docs/notes-pause.md).
	Background int32
	// CorePattern names the core file a process killed by a signal whose default action is
	// "core" leaves behind (Linux's kernel.core_pattern directives; docs/cores.md); empty
	// disables core files.
	CorePattern string
}

// Defaults of the policy (docs/abi.md).
const (
	DefaultFile   = "%N.ckpt"
	DefaultGroup  = int32(-1)
	DefaultSignal = SIGCKPT
	// DefaultBackground is the default of Policy.Background.
	DefaultBackground = int32(4)
)

// OCI annotations that set the policy for a sandbox. Flags of runsc-ckpt are turned into these
// annotations on the container's spec, so the annotation is the one carrier that reaches the sentry.
const (
	// AnnotationPrefix starts every annotation this package interprets.
	AnnotationPrefix = "dev.runsc-ckpt."
	// AnnotationFile sets Policy.File.
	AnnotationFile = AnnotationPrefix + "ckpt-file"
	// AnnotationGroup sets Policy.Group.
	AnnotationGroup = AnnotationPrefix + "ckpt-group"
	// AnnotationSignal sets Policy.Signal.
	AnnotationSignal = AnnotationPrefix + "ckpt-signal"
	// AnnotationBackground sets Policy.Background.
	AnnotationBackground = AnnotationPrefix + "ckpt-background"
	// AnnotationCorePattern sets Policy.CorePattern.
	AnnotationCorePattern = AnnotationPrefix + "core-pattern"
)

// DefaultPolicy returns the policy used when nothing is configured.
func DefaultPolicy() Policy {
	return Policy{File: DefaultFile, Group: DefaultGroup, Signal: DefaultSignal, Background: DefaultBackground, CorePattern: DefaultCorePattern}
}

// Validate reports whether every field of p is acceptable.
func (p Policy) Validate() error {
	if err := ValidateFileTemplate(p.File); err != nil {
		return err
	}
	if p.Group < -1 {
		return fmt.Errorf("ckpt-group %d: must be a gid >= 0, or -1 for any group", p.Group)
	}
	if p.Background < 0 {
		return fmt.Errorf("ckpt-background %d: must be >= 0 (0 turns background writes off)", p.Background)
	}
	if err := ValidateCorePattern(p.CorePattern); err != nil {
		return err
	}
	return ValidateSignal(p.Signal)
}

// ValidateFileTemplate checks a ckpt-file template: not empty, no NUL byte, at most PATH_MAX
// bytes, and every '%' followed by one of N, P, U or %.
func ValidateFileTemplate(tmpl string) error {
	if tmpl == "" {
		return fmt.Errorf("ckpt-file: empty file name template")
	}
	if len(tmpl) >= linux.PATH_MAX {
		return fmt.Errorf("ckpt-file %q: longer than PATH_MAX (%d)", tmpl, linux.PATH_MAX)
	}
	if strings.IndexByte(tmpl, 0) >= 0 {
		return fmt.Errorf("ckpt-file %q: contains a NUL byte", tmpl)
	}
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] != '%' {
			continue
		}
		if i+1 == len(tmpl) {
			return fmt.Errorf("ckpt-file %q: ends with a lone %%; write %%%% for a percent sign", tmpl)
		}
		switch tmpl[i+1] {
		case 'N', 'P', 'U', '%':
			i++
		default:
			return fmt.Errorf("ckpt-file %q: unknown directive %%%c at byte %d (known: %%N name, %%P pid, %%U uid, %%%%)", tmpl, tmpl[i+1], i)
		}
	}
	return nil
}

// ValidateSignal checks a ckpt-signal number: 0 (disabled) or a signal from 1 to 64 that can be
// caught (not SIGKILL or SIGSTOP) and is not SIGCKPTEXIT, which has its own fixed meaning.
func ValidateSignal(sig linux.Signal) error {
	switch {
	case sig == 0:
		return nil
	case sig < 1 || sig > linux.SignalMaximum:
		return fmt.Errorf("ckpt-signal %d: not a signal number (1-%d, or 0 to disable)", sig, linux.SignalMaximum)
	case sig == linux.SIGKILL:
		return fmt.Errorf("ckpt-signal %d: SIGKILL cannot be caught, so it cannot trigger a checkpoint", sig)
	case sig == linux.SIGSTOP:
		return fmt.Errorf("ckpt-signal %d: SIGSTOP cannot be caught, so it cannot trigger a checkpoint", sig)
	case sig == SIGCKPTEXIT:
		return fmt.Errorf("ckpt-signal %d: reserved for SIGCKPTEXIT (checkpoint and exit)", sig)
	}
	return nil
}

// ParseGroup parses a ckpt-group value.
func ParseGroup(s string) (int32, error) {
	g, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("ckpt-group %q: not a number: %w", s, err)
	}
	if g < -1 || g > math.MaxInt32 {
		return 0, fmt.Errorf("ckpt-group %d: must be a gid >= 0, or -1 for any group", g)
	}
	return int32(g), nil
}

// ParseSignal parses a ckpt-signal value, a decimal signal number. Names are not accepted:
// numbers are what docs/abi.md and include/ckpt.h fix.
func ParseSignal(s string) (linux.Signal, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("ckpt-signal %q: not a signal number: %w", s, err)
	}
	sig := linux.Signal(n)
	if err := ValidateSignal(sig); err != nil {
		return 0, err
	}
	return sig, nil
}

// WithAnnotations returns p with the fields set by the policy annotations in annotations. Unknown
// annotations under AnnotationPrefix are an error, so a misspelt key does not silently leave the
// default in force.
func (p Policy) WithAnnotations(annotations map[string]string) (Policy, error) {
	for key, val := range annotations {
		if !strings.HasPrefix(key, AnnotationPrefix) {
			continue
		}
		switch key {
		case AnnotationFile:
			if err := ValidateFileTemplate(val); err != nil {
				return p, fmt.Errorf("annotation %s: %w", key, err)
			}
			p.File = val
		case AnnotationGroup:
			g, err := ParseGroup(val)
			if err != nil {
				return p, fmt.Errorf("annotation %s: %w", key, err)
			}
			p.Group = g
		case AnnotationSignal:
			sig, err := ParseSignal(val)
			if err != nil {
				return p, fmt.Errorf("annotation %s: %w", key, err)
			}
			p.Signal = sig
		case AnnotationBackground:
			n, err := ParseBackground(val)
			if err != nil {
				return p, fmt.Errorf("annotation %s: %w", key, err)
			}
			p.Background = n
		case AnnotationCorePattern:
			if err := ValidateCorePattern(val); err != nil {
				return p, fmt.Errorf("annotation %s: %w", key, err)
			}
			p.CorePattern = val
		default:
			return p, fmt.Errorf("unknown annotation %q (known: %s, %s, %s, %s, %s)", key, AnnotationFile, AnnotationGroup, AnnotationSignal, AnnotationBackground, AnnotationCorePattern)
		}
	}
	return p, nil
}

// Annotations returns the annotations that carry p.
func (p Policy) Annotations() map[string]string {
	return map[string]string{
		AnnotationFile:   p.File,
		AnnotationGroup:  strconv.Itoa(int(p.Group)),
		AnnotationSignal: strconv.Itoa(int(p.Signal)),

		AnnotationBackground:  strconv.Itoa(int(p.Background)),
		AnnotationCorePattern: p.CorePattern,
	}
}

// ParseBackground parses a ckpt-background value: a decimal count >= 0.
func ParseBackground(s string) (int32, error) {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("ckpt-background %q: not a count >= 0", s)
	}
	return int32(n), nil
}

// FileName expands the File template for a process with the given name (comm), pid and uid.
// The template has been validated, so every '%' starts a known directive.
func (p Policy) FileName(name string, pid int32, uid uint32) string {
	var b strings.Builder
	for i := 0; i < len(p.File); i++ {
		c := p.File[i]
		if c != '%' || i+1 == len(p.File) {
			b.WriteByte(c)
			continue
		}
		i++
		switch p.File[i] {
		case 'N':
			b.WriteString(name)
		case 'P':
			b.WriteString(strconv.FormatInt(int64(pid), 10))
		case 'U':
			b.WriteString(strconv.FormatUint(uint64(uid), 10))
		default: // '%', or an unknown directive kept literally.
			if p.File[i] != '%' {
				b.WriteByte('%')
			}
			b.WriteByte(p.File[i])
		}
	}
	return b.String()
}

// installed is the policy of this sentry process, set once by SetPolicy before the kernel starts.
//
// Why a package-level value: the syscall table that dispatches sys_checkpoint is itself
// process-global (linux.AMD64), a handler receives only (task, sysno, args), and gVisor offers no
// exported per-kernel storage for extensions. One sentry process serves exactly one sandbox, so the
// policy is a property of the process. It is written once (compare-and-swap from nil) and only read
// afterwards; nil means "not configured", which reads as DefaultPolicy().
var installed atomic.Pointer[Policy]

// SetPolicy installs p as the policy of this sentry process. runsc-ckpt's main calls it once, in
// the `boot` process, before the kernel runs any guest code. A second call is an error.
func SetPolicy(p Policy) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("invalid checkpoint policy: %w", err)
	}
	if !installed.CompareAndSwap(nil, &p) {
		return fmt.Errorf("checkpoint policy already set to %+v", *installed.Load())
	}
	return nil
}

// CurrentPolicy returns the policy installed by SetPolicy, or DefaultPolicy() if none was.
func CurrentPolicy() Policy {
	if p := installed.Load(); p != nil {
		return *p
	}
	return DefaultPolicy()
}
