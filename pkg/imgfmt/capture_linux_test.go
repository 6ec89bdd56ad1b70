package imgfmt

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file captures a REAL process's state on the host with ptrace into a Process, for the
// compatibility tests: its image must make gdb show that process's registers and backtrace.

// requireTool fails the test (never skips) when a tool the compatibility tests need is missing.
func requireTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found in PATH: install it (apt-get install -y %s); these compatibility tests do not skip", name, pkg)
	}
	return p
}

// buildStopper compiles testdata/stopper.c statically into dir and returns the binary's path.
func buildStopper(t testing.TB, dir string) string {
	t.Helper()
	gcc := requireTool(t, "gcc", "gcc")
	bin := filepath.Join(dir, "stopper")
	out, err := exec.Command(gcc, "-static", "-g", "-O0", "-o", bin, "testdata/stopper.c").CombinedOutput()
	if err != nil {
		t.Fatalf("gcc -static: %v\n%s", err, out)
	}
	return bin
}

// capturedProcess is a stopped tracee and the Process captured from it.
type capturedProcess struct {
	p    *Process
	mem  *os.File
	cmd  *exec.Cmd
	regs unix.PtraceRegs
}

// close kills the tracee and releases its memory file.
func (c *capturedProcess) close() {
	c.mem.Close()
	c.cmd.Process.Kill()
	c.cmd.Wait()
}

// captureStopped runs bin under ptrace until it stops itself with SIGSTOP and captures its state.
// The caller must call close. It runs on a locked OS thread, as ptrace requires.
func captureStopped(t testing.TB, bin string) *capturedProcess {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	cmd := exec.Command(bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Ptrace: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	pid := cmd.Process.Pid
	wait := func(want syscall.Signal) {
		var ws unix.WaitStatus
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
			t.Fatalf("wait4: %v", err)
		}
		if !ws.Stopped() || ws.StopSignal() != want {
			t.Fatalf("tracee status %#x, want stopped by %v", ws, want)
		}
	}
	wait(syscall.SIGTRAP) // The exec.
	if err := unix.PtraceCont(pid, 0); err != nil {
		t.Fatalf("PTRACE_CONT: %v", err)
	}
	wait(syscall.SIGSTOP) // raise(SIGSTOP) in ckpt_stop_here.

	c := &capturedProcess{cmd: cmd}
	if err := unix.PtraceGetRegs(pid, &c.regs); err != nil {
		t.Fatalf("PTRACE_GETREGS: %v", err)
	}
	fx := make([]byte, fxsaveSize)
	if _, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_GETFPREGS, uintptr(pid), 0, uintptr(unsafe.Pointer(&fx[0])), 0, 0); e != 0 {
		t.Fatalf("PTRACE_GETFPREGS: %v", e)
	}
	xs := make([]byte, 16<<10)
	iov := unix.Iovec{Base: &xs[0], Len: uint64(len(xs))}
	if _, _, e := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_GETREGSET, uintptr(pid), unix.NT_X86_XSTATE, uintptr(unsafe.Pointer(&iov)), 0, 0); e != 0 {
		t.Fatalf("PTRACE_GETREGSET NT_X86_XSTATE: %v", e)
	}
	xs = xs[:iov.Len]

	r := &c.regs
	th := Thread{
		TID: int32(pid),
		Regs: Regs{R15: r.R15, R14: r.R14, R13: r.R13, R12: r.R12, Rbp: r.Rbp, Rbx: r.Rbx, R11: r.R11, R10: r.R10, R9: r.R9, R8: r.R8,
			Rax: r.Rax, Rcx: r.Rcx, Rdx: r.Rdx, Rsi: r.Rsi, Rdi: r.Rdi, OrigRax: r.Orig_rax, Rip: r.Rip, Cs: r.Cs,
			Eflags: r.Eflags, Rsp: r.Rsp, Ss: r.Ss, FsBase: r.Fs_base, GsBase: r.Gs_base, Ds: r.Ds, Es: r.Es, Fs: r.Fs, Gs: r.Gs},
		FPRegs: fx,
		XState: xs,
	}
	status := procStatus(t, pid)
	th.SigMask = status["SigBlk"]
	th.SigPending = status["SigPnd"]

	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		t.Fatalf("opening /proc/%d/mem: %v", pid, err)
	}
	c.mem = mem
	comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	p := &Process{
		Info: ProcessInfo{Name: strings.TrimSpace(string(comm)), Args: bin, PID: int32(pid), PPID: int32(os.Getpid()),
			PGID: int32(syscall.Getpgrp()), SID: int32(pid), Platform: "host-ptrace", FreezeTimeNano: time.Now().UnixNano()},
		Creds:   Creds{UID: uint32(os.Getuid()), EUID: uint32(os.Geteuid()), GID: uint32(os.Getgid()), EGID: uint32(os.Getegid())},
		Threads: []Thread{th},
		Signals: Signals{Pending: status["ShdPnd"]},
	}
	if len(p.Info.Args) > MaxArgsLen {
		p.Info.Args = p.Info.Args[len(p.Info.Args)-MaxArgsLen:]
	}
	if sid, err := unix.Getsid(pid); err == nil {
		p.Info.SID = int32(sid)
	}
	if pgid, err := unix.Getpgid(pid); err == nil {
		p.Info.PGID = int32(pgid)
	}
	captureMaps(t, p, pid, mem)
	captureAuxv(t, p, pid)
	captureFDs(t, p, pid)
	c.p = p
	return c
}

// procStatus returns the hex signal sets of /proc/PID/status.
func procStatus(t testing.TB, pid int) map[string]uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]uint64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(k, "Sig") && !strings.HasPrefix(k, "ShdPnd") {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil {
			m[k] = n
		}
	}
	return m
}

// fileHandle stats path into a FileHandle.
func fileHandle(t testing.TB, path string) *FileHandle {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return &FileHandle{Path: path, DevMajor: unix.Major(st.Dev), DevMinor: unix.Minor(st.Dev), Ino: st.Ino, Mode: st.Mode,
		Size: st.Size, MtimeNano: st.Mtim.Nano(), CtimeNano: st.Ctim.Nano()}
}

// captureMaps turns /proc/PID/maps into Mappings: read-only private file mappings by reference, the
// vDSO into VMInfo, [vvar] and [vsyscall] left out, everything else by content from /proc/PID/mem.
func captureMaps(t testing.TB, p *Process, pid int, mem *os.File) {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			t.Fatalf("bad maps line %q", sc.Text())
		}
		var start, end, off uint64
		fmt.Sscanf(fields[0], "%x-%x", &start, &end)
		fmt.Sscanf(fields[2], "%x", &off)
		name := ""
		if len(fields) >= 6 {
			name = fields[5]
		}
		perms := fields[1]
		switch name {
		case "[vvar]", "[vvar_vclock]", "[vsyscall]":
			continue
		case "[vdso]":
			p.VM.VDSOBase, p.VM.VDSOSize = start, end-start
			continue
		}
		m := Mapping{Start: start, End: end, Name: name, Shared: perms[3] == 's', GrowsDown: name == "[stack]"}
		if perms[0] == 'r' {
			m.Prot |= ProtRead
		}
		if perms[1] == 'w' {
			m.Prot |= ProtWrite
		}
		if perms[2] == 'x' {
			m.Prot |= ProtExec
		}
		if strings.HasPrefix(name, "/") {
			m.File = fileHandle(t, name)
			m.FileOffset = off
		}
		if m.File != nil && m.Prot&ProtWrite == 0 && !m.Shared {
			m.Kind = MapReference
		} else {
			m.Kind = MapContent
			m.Contents = io.NewSectionReader(mem, int64(start), int64(end-start))
		}
		if name == "[heap]" {
			p.VM.BrkStart, p.VM.BrkEnd = start, end
		}
		p.Mappings = append(p.Mappings, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		t.Fatal(err)
	}
	p.VM.Exe = fileHandle(t, exe)
}

// captureAuxv reads /proc/PID/auxv.
func captureAuxv(t testing.TB, p *Process, pid int) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/auxv", pid))
	if err != nil {
		t.Fatal(err)
	}
	for len(b) >= 16 {
		k, v := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])
		if k == 0 {
			break
		}
		p.Auxv = append(p.Auxv, AuxEntry{k, v})
		b = b[16:]
	}
}

// captureFDs reads the fd table from /proc/PID/fd and fdinfo.
func captureFDs(t testing.TB, p *Process, pid int) {
	t.Helper()
	for fd := 0; fd < 64; fd++ {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd))
		if err != nil {
			continue
		}
		f := File{FD: int32(fd), Desc: link, Offset: -1}
		info, _ := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%d", pid, fd))
		for _, line := range strings.Split(string(info), "\n") {
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimSpace(v)
			switch k {
			case "pos":
				f.Offset, _ = strconv.ParseInt(v, 10, 64)
			case "flags":
				fl, _ := strconv.ParseUint(v, 8, 32)
				f.StatusFlags = uint32(fl) &^ unix.O_CLOEXEC
				if fl&unix.O_CLOEXEC != 0 {
					f.FDFlags = unix.FD_CLOEXEC
				}
			}
		}
		var st unix.Stat_t
		if err := unix.Stat(fmt.Sprintf("/proc/%d/fd/%d", pid, fd), &st); err != nil {
			continue
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			f.Kind = FileRegular
		case unix.S_IFDIR:
			f.Kind = FileDirectory
		case unix.S_IFCHR:
			f.Kind = FileCharDev
		case unix.S_IFIFO:
			f.Kind = FileFIFO
		case unix.S_IFSOCK:
			f.Kind = FileSocket
		default:
			f.Kind = FileOther
		}
		if strings.HasPrefix(link, "/") && (f.Kind == FileRegular || f.Kind == FileCharDev || f.Kind == FileDirectory) {
			f.Handle = fileHandle(t, link)
		}
		p.Files = append(p.Files, f)
	}
}

// writeImage encodes p into a file in dir.
func writeImage(t testing.TB, dir, name string, p *Process) string {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := Encode(f, p); err != nil {
		t.Fatalf("Encode: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
