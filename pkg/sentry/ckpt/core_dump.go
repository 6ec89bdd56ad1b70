package ckpt

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/fspath"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/limits"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// coreFileMode is the mode of a core file, as Linux creates it.
const coreFileMode = 0o600

// coreSiblingGrace is how long the dumping thread waits for a sibling that keeps running in the
// sentry before recording it from the outside (siblingStop.runningGrace).
const coreSiblingGrace = 200 * time.Millisecond

// errCoreLimit ends a core dump that reached RLIMIT_CORE.
var errCoreLimit = errors.New("the core reached RLIMIT_CORE")

// dumpCore writes the core file of t's process, which sig (default action "core") is about to
// kill, then records the exit status: terminated by sig, with the core-dump flag if the whole core
// was written. faultAddr is the event's fault address (meaningful for fault signals).
//
// As Linux: no core if the core-pattern is empty, RLIMIT_CORE is below one page, or the process is
// not dumpable (set-id); the file is created in the process's working directory (or at the
// pattern's absolute path) with the process's credentials, O_EXCL after unlinking an old one,
// mode 0600; a core that reaches RLIMIT_CORE is cut there and does not count as dumped.
//
// Preconditions: running on t's task goroutine, inside Task.deliverSignal of sig's default action.
func dumpCore(t *kernel.Task, sig linux.Signal, faultAddr uint64) {
	pat := CurrentPolicy().CorePattern
	if pat == "" || t.Killed() {
		return
	}
	pid := t.ThreadGroup().PIDNamespace().IDOfThreadGroup(t.ThreadGroup())
	limit := t.ThreadGroup().Limits().Get(limits.Core).Cur
	if limit < imgfmt.PageSize {
		t.Debugf("ckpt: no core for pid %d: RLIMIT_CORE is %d", pid, limit)
		return
	}
	if err := checkDumpable(t, t); err != nil {
		t.Infof("ckpt: no core for pid %d: not dumpable", pid)
		return
	}
	creds := t.Credentials()
	name := ExpandCorePattern(pat, CoreVars{
		Name:     t.Name(),
		PID:      int32(pid),
		UID:      uint32(creds.RealKUID.In(creds.UserNamespace).OrOverflow()),
		GID:      uint32(creds.RealKGID.In(creds.UserNamespace).OrOverflow()),
		Signal:   int(sig),
		Time:     t.Kernel().RealtimeClock().Now().Seconds(),
		Hostname: t.UTSNamespace().HostName(),
	})
	ws := linux.WaitStatusTerminationSignal(sig)
	written, stop, err := writeCore(t, name, sig, faultAddr, limit)
	// Deferred, so it runs after PrepareGroupExit below: the siblings leave their stop only once
	// they have been killed, and never run user code again (nil-safe).
	defer stop.resume()
	if err == nil {
		ws = ws.WithCoreDump()
		t.Infof("ckpt: pid %d killed by signal %d: core written to %q (%d bytes)", pid, sig, name, written)
	} else {
		t.Warningf("ckpt: pid %d killed by signal %d: core %q not written: %v", pid, sig, name, err)
	}
	// The status is set before gVisor's own PrepareGroupExit, which keeps it; it also kills the
	// siblings, which writeCore left parked, so that none runs user code again.
	t.PrepareGroupExit(ws)
}

// writeCore creates the core file and writes the image of t's process into it. It returns the bytes
// the core occupies and the stop that keeps the other threads parked (nil if none was made), which
// the caller resumes once it has killed them.
func writeCore(t *kernel.Task, name string, sig linux.Signal, faultAddr uint64, limit uint64) (int64, *siblingStop, error) {
	file, done, err := createCoreFile(t, name)
	if err != nil {
		return 0, nil, err
	}
	defer file.DecRef(t)
	written := int64(0)
	// Nothing written (the capture failed): leave no empty core behind. A core cut by
	// RLIMIT_CORE or a failed write stays, as on Linux.
	defer func() { done(written == 0) }()

	stop, err := beginFreeze(t, atFatalSignal)
	if err != nil {
		return 0, nil, err
	}
	stop.runningGrace = coreSiblingGrace
	siblings, err := stop.stopSiblings(t)
	if err != nil {
		return 0, stop, err
	}
	p, err := captureStopped(t, captureRequest{at: atFatalSignal}, siblings)
	if err != nil {
		return 0, stop, fmt.Errorf("capturing the process: %w", err)
	}
	p.SigInfo = coreSigInfo(p, sig, faultAddr)
	if sent, ok := takeCoreSender(t.ThreadGroup(), sig); ok {
		// Sent by kill, tkill or tgkill (core_sender.go): Linux's siginfo for that, no address.
		p.SigInfo = &sent
	}
	p.CoreDump = true
	sink := &limitSink{fileSink: newFileSink(t, file), limit: int64(min(limit, math.MaxInt64))}
	err = imgfmt.Encode(sink, p)
	written = sink.written
	return written, stop, err
}

// createCoreFile unlinks name and creates it anew (O_EXCL, O_NOFOLLOW, mode 0600) relative to t's
// working directory, with t's credentials, as Linux's do_coredump does. The caller must call done
// once, with remove set to unlink the file again.
func createCoreFile(t *kernel.Task, name string) (file *vfs.FileDescription, done func(remove bool), err error) {
	root := t.FSContext().RootDirectory()
	cwd := t.FSContext().WorkingDirectory()
	release := func() {
		root.DecRef(t)
		cwd.DecRef(t)
	}
	path := fspath.Parse(name)
	start := cwd
	if path.Absolute {
		start = root
	}
	pop := &vfs.PathOperation{Root: root, Start: start, Path: path}
	vfsObj := t.Kernel().VFS()
	creds := t.Credentials()
	if err := vfsObj.UnlinkAt(t, creds, pop); err != nil && !linuxerr.Equals(linuxerr.ENOENT, err) {
		release()
		return nil, nil, fmt.Errorf("unlinking the old core: %w", err)
	}
	file, err = vfsObj.OpenAt(t, creds, pop, &vfs.OpenOptions{
		Flags: linux.O_WRONLY | linux.O_CREAT | linux.O_EXCL | linux.O_NOFOLLOW | linux.O_LARGEFILE | linux.O_CLOEXEC,
		Mode:  coreFileMode,
	})
	if err != nil {
		release()
		return nil, nil, fmt.Errorf("creating the core file: %w", err)
	}
	done = func(remove bool) {
		if remove {
			if err := vfsObj.UnlinkAt(t, creds, pop); err != nil {
				t.Warningf("ckpt: removing the empty core %q: %v", name, err)
			}
		}
		release()
	}
	return file, done, nil
}

// Linux's si_code values of the faults gVisor reports (asm-generic/siginfo.h).
const (
	segvMapErr = 1    // SEGV_MAPERR: no mapping at the address
	segvAccErr = 2    // SEGV_ACCERR: the mapping forbids the access
	busAdrErr  = 2    // BUS_ADRERR: nonexistent physical address (past the end of a mapped file)
	fpeIntDiv  = 1    // FPE_INTDIV: integer divide by zero (#DE)
	illIllOpn  = 2    // ILL_ILLOPN: illegal operand (#UD)
	siKernel   = 0x80 // SI_KERNEL
)

// coreSigInfo rebuilds the killing signal's siginfo. gVisor's UncaughtSignal event carries only the
// signal number and, for fault signals, the address, so the code is the one Linux on x86-64 uses
// for the fault behind each signal: SIGSEGV SEGV_MAPERR or SEGV_ACCERR (by whether a mapping covers
// the address), SIGBUS BUS_ADRERR, SIGFPE FPE_INTDIV, SIGILL ILL_ILLOPN, SIGTRAP SI_KERNEL (int3).
// The other core signals are sent by a process, which the event does not name: code SI_USER, pid
// and uid 0, unless the sender is known (takeCoreSender).
func coreSigInfo(p *imgfmt.Process, sig linux.Signal, addr uint64) *imgfmt.SigInfo {
	si := &imgfmt.SigInfo{Signo: int32(sig)}
	switch sig {
	case linux.SIGSEGV:
		si.Code = segvMapErr
		for i := range p.Mappings {
			if m := &p.Mappings[i]; addr >= m.Start && addr < m.End {
				si.Code = segvAccErr
			}
		}
		if v := &p.VM; v.VDSOSize != 0 && addr >= v.VDSOBase-imgfmt.PageSize && addr < v.VDSOBase+v.VDSOSize {
			si.Code = segvAccErr
		}
	case linux.SIGBUS:
		si.Code = busAdrErr
	case linux.SIGFPE:
		si.Code = fpeIntDiv
	case linux.SIGILL:
		si.Code = illIllOpn
	case linux.SIGTRAP:
		si.Code = siKernel
	}
	if imgfmt.HasAddr(si.Signo, si.Code) {
		si.Addr = addr
	}
	return si
}

// limitSink is a fileSink that stops at RLIMIT_CORE: the bytes up to the limit are written, then
// errCoreLimit ends the dump, as Linux stops writing a core at the limit.
type limitSink struct {
	*fileSink
	limit int64
}

// Write implements io.Writer.
func (s *limitSink) Write(b []byte) (int, error) {
	if room := s.limit - s.written; int64(len(b)) > room {
		n, err := s.fileSink.Write(b[:max(room, 0)])
		if err == nil {
			err = errCoreLimit
		}
		return n, err
	}
	return s.fileSink.Write(b)
}

// Hole implements imgfmt.Sink.
func (s *limitSink) Hole(n int64) error {
	if n > s.limit-s.written {
		return errCoreLimit
	}
	return s.fileSink.Hole(n)
}
