package test

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
	"golang.org/x/sys/unix"
)

// runFreezeGuest runs `guest IMAGE` in a new sandbox on platform whose writes reach the host,
// wants exit status 0, and returns the result and the image's path (name in the sandbox's
// directory).
func runFreezeGuest(t *testing.T, platform, guest, name string) (*harness.Result, string) {
	t.Helper()
	s := h.NewSandbox(t, harness.Opts{Platform: platform, Persist: true})
	image := filepath.Join(s.Dir, name)
	r := s.Run(t, s.DoArgs(guest, image)...)
	r.WantExit(t, 0)
	return r, image
}

// runTool runs a host tool and returns its combined output, failing t if it exits non-zero.
func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// checkELFCore checks that the image is an x86-64 ELF core file that readelf and eu-readelf
// accept, and returns the number of NT_PRSTATUS notes readelf lists.
func checkELFCore(t *testing.T, path string) int {
	t.Helper()
	ef, err := elf.Open(path)
	if err != nil {
		t.Fatalf("debug/elf: %v", err)
	}
	defer ef.Close()
	if ef.Type != elf.ET_CORE || ef.Machine != elf.EM_X86_64 {
		t.Errorf("ELF type %v machine %v, want ET_CORE EM_X86_64", ef.Type, ef.Machine)
	}
	notes := runTool(t, "readelf", "-W", "-h", "-l", "-n", path)
	if strings.Contains(notes, "Error") || strings.Contains(notes, "Warning") {
		t.Errorf("readelf complains:\n%s", grepLines(notes, "Error|Warning"))
	}
	out, err := exec.Command("eu-readelf", "-h", "-l", "-n", path).CombinedOutput()
	if err != nil {
		t.Errorf("eu-readelf: %v\n%s", err, grepLines(string(out), "eu-readelf|invalid|error"))
	}
	return strings.Count(notes, "NT_PRSTATUS")
}

// allocatedBytes returns how many bytes of the file at path are allocated on disk.
func allocatedBytes(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// TestFreezeBasic: a static C guest with 64 MiB of memory (a quarter touched with a non-zero
// pattern, in 64 KiB pieces), an open log file and a private file mapping freezes itself into a file and
// keeps running. The image is a valid core file for readelf, eu-readelf, Go's debug/elf and gdb
// (backtrace through main, a global's value), the codec decodes it with the file and the mapping,
// and only the touched pages take disk space.
func TestFreezeBasic(t *testing.T) {
	guest := h.BuildC(t, "freeze_basic")
	h.ForEachPlatform(t, func(t *testing.T, platform string) {
		s := h.NewSandbox(t, harness.Opts{Platform: platform, Persist: true})
		image := filepath.Join(s.Dir, "basic.img")
		mapfile := filepath.Join(s.Dir, "mapped.txt")
		logfile := filepath.Join(s.Dir, "log.txt")
		if err := os.WriteFile(mapfile, []byte("Mapped file contents\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := s.Run(t, s.DoArgs(guest, image, mapfile, logfile)...)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "freeze=0 errno=0 global=0x1234abcd5678 map0=M") || !strings.Contains(r.Stdout, "alive") {
			t.Fatalf("guest output:\n%s", r)
		}
		if b, _ := os.ReadFile(logfile); string(b) != "before freeze\nafter freeze\n" {
			t.Errorf("log file = %q, want both lines (the process kept running)", b)
		}

		if n := checkELFCore(t, image); n != 1 {
			t.Errorf("readelf lists %d NT_PRSTATUS notes, want 1", n)
		}
		gdb := runTool(t, "gdb", "-batch", "-nx", "-ex", "bt", "-ex", "p/x freeze_global", guest, image)
		for _, want := range []string{"do_freeze", "in main", "freeze_basic.c", "= 0x1234abcd5678"} {
			if !strings.Contains(gdb, want) {
				t.Errorf("gdb output lacks %q:\n%s", want, gdb)
			}
		}

		inspect := runTool(t, h.Bin, "inspect", image)
		for _, want := range []string{mapfile, logfile, "freeze_basic"} {
			if !strings.Contains(inspect, want) {
				t.Errorf("inspect output lacks %q:\n%s", want, inspect)
			}
		}

		p := decodeImage(t, image)
		var ref *imgfmt.Mapping
		for i := range p.Mappings {
			if m := &p.Mappings[i]; m.File != nil && m.File.Path == mapfile {
				ref = m
			}
		}
		if ref == nil || ref.Kind != imgfmt.MapReference || ref.Prot != imgfmt.ProtRead {
			t.Errorf("mapping of %s = %+v, want a read-only MapReference", mapfile, ref)
		}
		var logFD, imageFD *imgfmt.File
		for i := range p.Files {
			f := &p.Files[i]
			if f.Handle != nil && f.Handle.Path == logfile {
				logFD = f
			}
			if f.IsImage {
				imageFD = f
			}
		}
		if logFD == nil || logFD.Kind != imgfmt.FileRegular || logFD.StatusFlags&syscall.O_APPEND == 0 || logFD.Offset != int64(len("before freeze\n")) {
			t.Errorf("log fd = %+v, want a regular O_APPEND file at offset 14", logFD)
		}
		if imageFD == nil || imageFD.Handle == nil || imageFD.Handle.Path != image {
			t.Errorf("image fd = %+v, want the image marked IsImage", imageFD)
		}
		if p.Info.Name != comm(guest) || len(p.Threads) != 1 || p.VM.Exe == nil || p.VM.Exe.Path != guest {
			t.Errorf("process info %+v, %d threads, exe %+v", p.Info, len(p.Threads), p.VM.Exe)
		}

		// 16 MiB of the 64 MiB region are touched; the rest (holes) plus the stack, data and
		// notes must stay well below the apparent size.
		alloc := allocatedBytes(t, image)
		const touched = 16 << 20
		if alloc < touched || alloc > touched+4<<20 {
			t.Errorf("image allocates %d bytes on disk, want [%d, %d]", alloc, touched, touched+4<<20)
		}
	})
}

// TestFreezeThreads: a 4-thread guest freezes while its three workers run (two spin, one sleeps in
// nanosleep); the image holds 4 NT_PRSTATUS notes with distinct thread ids and stacks, and the
// workers keep running afterwards.
func TestFreezeThreads(t *testing.T) {
	guest := h.BuildC(t, "freeze_threads", "-pthread")
	h.ForEachPlatform(t, func(t *testing.T, platform string) {
		r, image := runFreezeGuest(t, platform, guest, "threads.img")
		if !strings.Contains(r.Stdout, "freeze=0 errno=0\nprogress=1") {
			t.Fatalf("guest output:\n%s", r)
		}
		if n := checkELFCore(t, image); n != 4 {
			t.Errorf("readelf lists %d NT_PRSTATUS notes, want 4", n)
		}
		p := decodeImage(t, image)
		tids := map[int32]bool{}
		stacks := map[uint64]bool{}
		for _, th := range p.Threads {
			tids[th.TID] = true
			var in *imgfmt.Mapping
			for i := range p.Mappings {
				if m := &p.Mappings[i]; th.Regs.Rsp >= m.Start && th.Regs.Rsp < m.End {
					in = m
				}
			}
			if in == nil || in.Prot&imgfmt.ProtWrite == 0 {
				t.Errorf("thread %d: rsp %#x is not in a writable mapping", th.TID, th.Regs.Rsp)
				continue
			}
			stacks[in.Start] = true
			if len(th.FPRegs) != 512 {
				t.Errorf("thread %d: %d bytes of FP registers, want 512", th.TID, len(th.FPRegs))
			}
		}
		// Every thread's clear_child_tid (set_tid_address at startup, CLONE_CHILD_CLEARTID for the
		// workers) must be recorded and point at glibc's copy of that thread's tid.
		img, err := os.Open(image)
		if err != nil {
			t.Fatal(err)
		}
		defer img.Close()
		for _, th := range p.Threads {
			if got := readImageU32(t, img, p, th.ClearTID); got != uint32(th.TID) {
				t.Errorf("thread %d: clear_child_tid %#x holds %d, want its tid", th.TID, th.ClearTID, got)
			}
		}
		if len(p.Threads) != 4 || len(tids) != 4 || len(stacks) != 4 {
			t.Errorf("%d threads, %d distinct tids, %d distinct stack mappings; want 4 each", len(p.Threads), len(tids), len(stacks))
		}
		gdb := runTool(t, "gdb", "-batch", "-nx", "-ex", "thread apply all bt", guest, image)
		for _, want := range []string{"spinner (", "sleeper (", " main ("} {
			if !strings.Contains(gdb, want) {
				t.Errorf("gdb backtraces lack %q:\n%s", want, gdb)
			}
		}
	})
}

// TestFreezeCkptFile: fd == -1 and pid == -1 write the ckpt-file, named by the default template
// (%N.ckpt) or by --ckpt-file, in the process's working directory, with mode 0600, replacing an
// older file, and leaving no temporary file behind.
func TestFreezeCkptFile(t *testing.T) {
	guest := h.BuildC(t, "freeze_basic")
	name := comm(guest)
	for _, tc := range []struct {
		name string
		flag func(dir string) string // the --ckpt-file flag for a sandbox directory, "" for none
		file string                  // the expected image, relative to the sandbox directory
	}{
		{"default", func(string) string { return "" }, name + ".ckpt"},
		{"template", func(string) string { return "--ckpt-file=img-%N-%P-%U-%%.core" }, "img-" + name + "-1-0-%.core"},
		{"absolute", func(dir string) string { return "--ckpt-file=" + dir + "/sub/abs-%N.ckpt" }, "sub/abs-" + name + ".ckpt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := h.NewSandbox(t, harness.Opts{Persist: true})
			if f := tc.flag(s.Dir); f != "" {
				s.Opts.Flags = []string{f}
			}
			// The guest's cwd is s.Dir: relative names land there, the absolute one in sub/.
			if err := os.MkdirAll(filepath.Join(s.Dir, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			mapfile := filepath.Join(s.Dir, "mapped.txt")
			if err := os.WriteFile(mapfile, []byte("Mapped\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			want := filepath.Join(s.Dir, tc.file)
			// An older file with other permissions is replaced.
			if err := os.WriteFile(want, []byte("old image"), 0o644); err != nil {
				t.Fatal(err)
			}
			r := s.Run(t, s.DoArgs(guest, "-", mapfile, filepath.Join(s.Dir, "log.txt"))...)
			r.WantExit(t, 0)
			st, err := os.Stat(want)
			if err != nil {
				t.Fatalf("ckpt-file: %v\n%s", err, r)
			}
			if st.Mode().Perm() != 0o600 {
				t.Errorf("ckpt-file mode %v, want 0600", st.Mode())
			}
			checkELFCore(t, want)
			decodeImage(t, want)
			for _, d := range []string{s.Dir, filepath.Join(s.Dir, "sub")} {
				entries, _ := os.ReadDir(d)
				for _, e := range entries {
					if strings.Contains(e.Name(), ".tmp-") {
						t.Errorf("temporary file %s left behind in %s", e.Name(), d)
					}
				}
			}
		})
	}
}

// TestFreezeErrno: every error path of CKPT_FREEZE fails with its exact errno, including ENOSPC on
// a full (1 MiB tmpfs) volume, for an fd and for the ckpt-file, without leaving a partial image.
// It also freezes into an O_APPEND file, whose holes must grow the file rather than be seeked over.
func TestFreezeErrno(t *testing.T) {
	guest := h.BuildC(t, "freeze_errno")
	want := []string{
		"bad_type ret=-1 errno=EOPNOTSUPP",
		"fd_readonly ret=-1 errno=EBADF",
		"fd_closed ret=-1 errno=EBADF",
		"fd_minus2 ret=-1 errno=EBADF",
		"fd_minus1_pid_self ret=-1 errno=EBADF",
		"pid_zero ret=-1 errno=EINVAL",
		"pid_negative ret=-1 errno=EINVAL",
		"pid_missing ret=-1 errno=ESRCH",
		"pid_self ret=0 errno=0",
		"rlimit_core_zero ret=-1 errno=ERANGE",
		"not_dumpable ret=-1 errno=EPERM",
		"append ret=0 errno=0",
		"enospc_fd ret=-1 errno=ENOSPC",
		"enospc_fd_size=0 offset=0",
		"enospc_ckptfile ret=-1 errno=ENOSPC",
		"enospc_ckptfile_entries=0",
		"ok_after ret=0 errno=0",
		"done",
	}
	h.ForEachPlatform(t, func(t *testing.T, platform string) {
		s := h.NewSandbox(t, harness.Opts{Platform: platform, Persist: true})
		r := s.Run(t, s.DoArgs(guest, s.Dir)...)
		r.WantExit(t, 0)
		got := strings.Split(strings.TrimSpace(r.Stdout), "\n")
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("errno cases:\n got: %q\nwant: %q\n%s", got, want, r)
		}
		decodeImage(t, filepath.Join(s.Dir, "ok.img"))
		// The O_APPEND image decodes and its holes (most of the 8 MiB stack) are real holes.
		appendImg := filepath.Join(s.Dir, "append.img")
		decodeImage(t, appendImg)
		st, err := os.Stat(appendImg)
		if err != nil {
			t.Fatal(err)
		}
		if alloc := allocatedBytes(t, appendImg); alloc > st.Size()-4<<20 {
			t.Errorf("O_APPEND image: %d of %d bytes allocated, want the stack's zeros left as holes", alloc, st.Size())
		}
	})
}

// TestFreezeOtherProcess: our extension: a process freezes another one it may ptrace (a child
// blocked in nanosleep), which keeps running; an unprivileged caller gets EPERM.
func TestFreezeOtherProcess(t *testing.T) {
	guest := h.BuildC(t, "freeze_other")
	h.ForEachPlatform(t, func(t *testing.T, platform string) {
		r, image := runFreezeGuest(t, platform, guest, "other.img")
		for _, want := range []string{"freeze=0 errno=0", "target_alive=1", "unprivileged=-1 errno=1"} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("guest output lacks %q:\n%s", want, r)
			}
		}
		m := regexp.MustCompile(`target=(\d+)`).FindStringSubmatch(r.Stdout)
		p := decodeImage(t, image)
		if m == nil || m[1] != itoa(p.Info.PID) || p.Info.Name != "freeze_target" {
			t.Errorf("image is of pid %d (%s), want the target %v", p.Info.PID, p.Info.Name, m)
		}
		gdb := runTool(t, "gdb", "-batch", "-nx", "-ex", "bt", guest, image)
		if !strings.Contains(gdb, "nanosleep") || !strings.Contains(gdb, "in main") {
			t.Errorf("gdb backtrace of the target:\n%s", gdb)
		}
	})
}

// TestFreezeGo: a static Go program with goroutines running on several threads freezes itself.
func TestFreezeGo(t *testing.T) {
	guest := h.BuildGo(t, "freezego")
	h.ForEachPlatform(t, func(t *testing.T, platform string) {
		r, image := runFreezeGuest(t, platform, guest, "go.img")
		if !strings.Contains(r.Stdout, "freeze=0 errno=0\nalive true") {
			t.Fatalf("guest output:\n%s", r)
		}
		if n := checkELFCore(t, image); n < 2 {
			t.Errorf("readelf lists %d NT_PRSTATUS notes, want the Go runtime's threads (>= 2)", n)
		}
		gdb := runTool(t, "gdb", "-batch", "-nx", "-ex", "bt", guest, image)
		if !strings.Contains(gdb, "main.main") {
			t.Errorf("gdb backtrace lacks main.main:\n%s", gdb)
		}
	})
}

// TestFreezePython: a dynamically linked python3 from the host root freezes itself through ctypes;
// its shared libraries are stored by reference and gdb finds them.
func TestFreezePython(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3: %v", err)
	}
	// pyenv's python3 is a shell script that runs the real interpreter; gdb needs the real one.
	real, err := filepath.EvalSymlinks(strings.TrimSpace(runTool(t, python, "-c", "import sys; print(sys.executable)")))
	if err != nil {
		t.Fatal(err)
	}
	const script = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
data = [i * i for i in range(100000)]
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
r = libc.syscall(1000, 1, fd, -1, 0)
print("freeze=%d errno=%d sum=%d" % (r, ctypes.get_errno(), sum(data)))
`
	h.ForEachPlatform(t, func(t *testing.T, platform string) {
		s := h.NewSandbox(t, harness.Opts{Platform: platform, Persist: true})
		image := filepath.Join(s.Dir, "py.img")
		r := s.Run(t, s.DoArgs(real, "-c", script, image)...)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "freeze=0 errno=0 sum=333328333350000") {
			t.Fatalf("guest output:\n%s", r)
		}
		checkELFCore(t, image)
		p := decodeImage(t, image)
		refs := 0
		for _, m := range p.Mappings {
			if m.Kind == imgfmt.MapReference && m.File != nil && strings.Contains(m.File.Path, "libc.so") {
				refs++
			}
		}
		if refs == 0 {
			t.Errorf("no libc mapping stored by reference")
		}
		gdb := runTool(t, "gdb", "-batch", "-nx", "-ex", "bt", real, image)
		if !strings.Contains(gdb, "_PyEval_EvalFrame") && !strings.Contains(gdb, "ffi_call") {
			t.Errorf("gdb backtrace does not reach the interpreter:\n%s", gdb)
		}
	})
}

// readImageU32 reads the little-endian 32-bit word at virtual address addr from the image's stored
// memory; it fails t if no stored mapping holds addr.
func readImageU32(t *testing.T, img *os.File, p *imgfmt.Process, addr uint64) uint32 {
	t.Helper()
	for i := range p.Mappings {
		m := &p.Mappings[i]
		if addr < m.Start || addr+4 > m.End {
			continue
		}
		r := imgfmt.SegmentReader(img, m)
		if r == nil {
			t.Fatalf("address %#x is in a mapping without stored bytes (%+v)", addr, *m)
		}
		var b [4]byte
		if _, err := r.ReadAt(b[:], int64(addr-m.Start)); err != nil {
			t.Fatalf("reading %#x: %v", addr, err)
		}
		return binary.LittleEndian.Uint32(b[:])
	}
	t.Fatalf("address %#x is not in any mapping", addr)
	return 0
}

// TestFreezeRefusesSyscallPatching: with systrap's syscall patching turned back on, the guest's
// code jumps through a [usertrap] table that a thaw cannot recreate; freeze refuses with EINVAL
// and leaves the image file empty rather than writing a broken image.
func TestFreezeRefusesSyscallPatching(t *testing.T) {
	guest := h.BuildC(t, "freeze_basic")
	s := h.NewSandbox(t, harness.Opts{Platform: "systrap", Persist: true, Flags: []string{"--systrap-disable-syscall-patching=false"}})
	image := filepath.Join(s.Dir, "patched.img")
	mapfile := filepath.Join(s.Dir, "mapped.txt")
	if err := os.WriteFile(mapfile, []byte("Mapped\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := s.Run(t, s.DoArgs(guest, image, mapfile, filepath.Join(s.Dir, "log.txt"))...)
	if r.ExitCode != 1 || !strings.Contains(r.Stdout, "freeze=-1 errno=22") || !strings.Contains(r.Stdout, "alive") {
		t.Fatalf("want freeze=-1 errno=22 (EINVAL) and the guest alive:\n%s", r)
	}
	if st, err := os.Stat(image); err != nil || st.Size() != 0 {
		t.Errorf("image after a refused freeze: %v, err %v; want an empty file", st, err)
	}
}

// TestFreezeConcurrent: four threads of one process freeze it at the same moment, five rounds.
// Every call succeeds and every image holds all four threads: one freeze runs at a time, and the
// threads waiting to start theirs take part in it as stopped threads. (Before freezes were
// serialised, the threads waited for each other forever.)
func TestFreezeConcurrent(t *testing.T) {
	guest := h.BuildC(t, "freeze_race", "-pthread")
	h.ForEachPlatform(t, func(t *testing.T, platform string) {
		s := h.NewSandbox(t, harness.Opts{Platform: platform, Persist: true, Timeout: 60 * time.Second})
		r := s.Run(t, s.DoArgs(guest, s.Dir, "5")...)
		r.WantExit(t, 0)
		want := "round 0 ok\nround 1 ok\nround 2 ok\nround 3 ok\nround 4 ok\ndone\n"
		if r.Stdout != want {
			t.Fatalf("guest output:\n%s", r)
		}
		for round := 0; round < 5; round++ {
			for th := 0; th < 4; th++ {
				p := decodeImage(t, filepath.Join(s.Dir, fmt.Sprintf("race-%d-%d.img", round, th)))
				if len(p.Threads) != 4 {
					t.Errorf("round %d thread %d: image has %d threads, want 4", round, th, len(p.Threads))
				}
			}
		}
	})
}

// TestFreezeKinds: every kind of fd and mapping is recorded as it should be: pipes, sockets,
// eventfd, epoll by kind and description only; /dev/null, a directory, an O_PATH symlink and
// regular files with handles, status flags, FD_CLOEXEC and offsets; shared anonymous memory and a
// memfd mapping by content (shared, no handle); a never-touched PROT_NONE reservation as zeros; a
// modified writable private file mapping by content with its file and offset; an untouched
// read-only one by reference; a mapping reaching past its file's end by content, zeros past EOF.
func TestFreezeKinds(t *testing.T) {
	guest := h.BuildC(t, "freeze_kinds")
	h.ForEachPlatform(t, func(t *testing.T, platform string) {
		s := h.NewSandbox(t, harness.Opts{Platform: platform, Persist: true})
		image := filepath.Join(s.Dir, "kinds.img")
		data := filepath.Join(s.Dir, "data")
		if err := os.WriteFile(data, bytes.Repeat([]byte("0123456789abcdef"), 1024), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.Dir, "small"), []byte("small file, less than a page"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("data", filepath.Join(s.Dir, "link")); err != nil {
			t.Fatal(err)
		}
		r := s.Run(t, s.DoArgs(guest, image, s.Dir)...)
		r.WantExit(t, 0)
		addrs := map[string]uint64{}
		for _, m := range regexp.MustCompile(`(\w+)=(0x[0-9a-f]+)`).FindAllStringSubmatch(r.Stdout, -1) {
			v, err := strconv.ParseUint(m[2], 0, 64)
			if err != nil {
				t.Fatal(err)
			}
			addrs[m[1]] = v
		}
		if len(addrs) != 6 || !strings.Contains(r.Stdout, "freeze=0 errno=0") {
			t.Fatalf("guest output:\n%s", r)
		}
		p := decodeImage(t, image)

		fds := map[int32]imgfmt.File{}
		for _, f := range p.Files {
			fds[f.FD] = f
		}
		type fdWant struct {
			kind   imgfmt.FileKind
			desc   string // prefix
			handle string // handle path, "" for none
			flags  uint32 // status flags that must be set
			offset int64
		}
		for fd, w := range map[int32]fdWant{
			10: {imgfmt.FileFIFO, "pipe:[", "", syscall.O_RDONLY, -1},
			11: {imgfmt.FileFIFO, "pipe:[", "", syscall.O_WRONLY | syscall.O_NONBLOCK, -1},
			12: {imgfmt.FileSocket, "socket:[", "", syscall.O_RDWR, -1},
			13: {imgfmt.FileEventFD, "anon_inode:[eventfd]", "", syscall.O_RDWR, -1},
			14: {imgfmt.FileCharDev, "/dev/null", "/dev/null", syscall.O_RDWR, 0},
			15: {imgfmt.FileDirectory, s.Dir, s.Dir, syscall.O_RDONLY, 0},
			16: {imgfmt.FileSymlink, filepath.Join(s.Dir, "link"), filepath.Join(s.Dir, "link"), unix.O_PATH, -1},
			17: {imgfmt.FileRegular, "/memfd:kinds", "/memfd:kinds (deleted)", syscall.O_RDWR, 0},
			18: {imgfmt.FileRegular, data, data, syscall.O_RDWR, 1234},
			19: {imgfmt.FileOther, "anon_inode:[eventpoll]", "", syscall.O_RDWR, -1},
		} {
			f, ok := fds[fd]
			handle := ""
			if f.Handle != nil {
				handle = f.Handle.Path
			}
			if !ok || f.Kind != w.kind || !strings.HasPrefix(f.Desc, w.desc) || handle != w.handle ||
				f.StatusFlags&w.flags != w.flags || f.Offset != w.offset {
				t.Errorf("fd %d = %+v (handle %q), want %+v", fd, f, handle, w)
			}
		}
		if fds[18].FDFlags != syscall.FD_CLOEXEC || fds[14].FDFlags != 0 {
			t.Errorf("FD_CLOEXEC: fd 18 %#x, fd 14 %#x; want set, clear", fds[18].FDFlags, fds[14].FDFlags)
		}
		if fds[10].Desc != fds[11].Desc {
			t.Errorf("the two ends of one pipe are %q and %q", fds[10].Desc, fds[11].Desc)
		}

		maps := map[uint64]imgfmt.Mapping{}
		for _, m := range p.Mappings {
			maps[m.Start] = m
		}
		check := func(name string, ok func(m imgfmt.Mapping) bool) {
			t.Helper()
			if m, found := maps[addrs[name]]; !found || !ok(m) {
				t.Errorf("mapping %s at %#x = %+v", name, addrs[name], m)
			}
		}
		// Shared mappings of shared anonymous memory and of a memfd name their file-data objects
		// (format 1.2), which carry the bytes.
		check("shared", func(m imgfmt.Mapping) bool { return m.Kind == imgfmt.MapObject && m.Shared && m.File == nil })
		check("memfd", func(m imgfmt.Mapping) bool { return m.Kind == imgfmt.MapObject && m.Shared && m.File == nil })
		objectData := func(start uint64) string {
			for _, o := range p.Objects {
				if b, ok := o.Body.(*imgfmt.FileDataObject); ok && len(b.Runs) > 0 && slices.Contains(b.Maps, start) {
					return string(b.Runs[0].Data)
				}
			}
			return ""
		}
		if got := objectData(addrs["shared"]); !strings.HasPrefix(got, "shared anonymous\x00") {
			t.Errorf("shared anonymous memory's object holds %.20q", got)
		}
		if got := objectData(addrs["memfd"]); !strings.HasPrefix(got, "memfd contents\x00") {
			t.Errorf("the memfd's object holds %.20q", got)
		}
		check("reserve", func(m imgfmt.Mapping) bool {
			return m.Kind == imgfmt.MapZero && m.Prot == 0 && m.End-m.Start == 256<<20
		})
		check("cow", func(m imgfmt.Mapping) bool {
			return m.Kind == imgfmt.MapContent && !m.Shared && m.File != nil && m.File.Path == data && m.FileOffset == 4096
		})
		check("ro", func(m imgfmt.Mapping) bool {
			return m.Kind == imgfmt.MapReference && m.File != nil && m.File.Path == data && m.FileOffset == 0
		})
		img, err := os.Open(image)
		if err != nil {
			t.Fatal(err)
		}
		defer img.Close()
		if got := readImageU32(t, img, p, addrs["cow"]); got != binary.LittleEndian.Uint32([]byte("C123")) {
			t.Errorf("cow page starts with %#x, want the modified 'C123'", got)
		}
		// Pages past the end of a mapped file cannot be read (the program would get SIGBUS); they
		// are stored as zeros instead of failing the freeze.
		check("beyond", func(m imgfmt.Mapping) bool { return m.Kind == imgfmt.MapContent && m.End-m.Start == 3*4096 })
		if got := readImageU32(t, img, p, addrs["beyond"]); got != binary.LittleEndian.Uint32([]byte("Smal")) {
			t.Errorf("beyond mapping starts with %#x, want 'Smal'", got)
		}
		if got := readImageU32(t, img, p, addrs["beyond"]+2*4096); got != 0 {
			t.Errorf("beyond mapping's page past EOF holds %#x, want 0", got)
		}
	})
}

// TestFreezeSignals: the signal state is recorded: a handled signal's handler, flags and mask, an
// ignored signal, the blocked mask, a pending signal, the alternate stack, ITIMER_REAL and the
// parent-death signal.
func TestFreezeSignals(t *testing.T) {
	guest := h.BuildC(t, "freeze_signals")
	h.ForEachPlatform(t, func(t *testing.T, platform string) {
		r, image := runFreezeGuest(t, platform, guest, "signals.img")
		m := regexp.MustCompile(`handler=(0x[0-9a-f]+) altstack=(0x[0-9a-f]+) freeze=0 errno=0`).FindStringSubmatch(r.Stdout)
		if m == nil {
			t.Fatalf("guest output:\n%s", r)
		}
		handler, _ := strconv.ParseUint(m[1], 0, 64)
		altstack, _ := strconv.ParseUint(m[2], 0, 64)
		p := decodeImage(t, image)
		bit := func(sig syscall.Signal) uint64 { return 1 << (sig - 1) }

		usr1 := p.Signals.Actions[syscall.SIGUSR1-1]
		const saRestart, saOnstack = 0x10000000, 0x08000000
		if usr1.Handler != handler || usr1.Flags&(saRestart|saOnstack) != saRestart|saOnstack || usr1.Mask != bit(syscall.SIGUSR2) {
			t.Errorf("SIGUSR1 action %+v, want handler %#x, SA_RESTART|SA_ONSTACK, mask {SIGUSR2}", usr1, handler)
		}
		if hd := p.Signals.Actions[syscall.SIGPIPE-1].Handler; hd != 1 {
			t.Errorf("SIGPIPE handler %#x, want SIG_IGN (1)", hd)
		}
		if hd := p.Signals.Actions[syscall.SIGTERM-1].Handler; hd != 0 {
			t.Errorf("SIGTERM handler %#x, want SIG_DFL (0)", hd)
		}
		th := p.Threads[0]
		if th.SigMask != bit(syscall.SIGUSR2) || th.SigPending&bit(syscall.SIGUSR2) == 0 || p.Signals.Pending&bit(syscall.SIGUSR2) == 0 {
			t.Errorf("mask %#x, thread pending %#x, group pending %#x; want SIGUSR2 blocked and pending", th.SigMask, th.SigPending, p.Signals.Pending)
		}
		if th.AltStack.Addr != altstack || th.AltStack.Size != 64<<10 {
			t.Errorf("altstack %+v, want %#x size 64 KiB", th.AltStack, altstack)
		}
		real := p.Signals.Itimers[0]
		if real.IntervalNano != 50e9 || real.ValueNano <= 90e9 || real.ValueNano > 100e9 {
			t.Errorf("ITIMER_REAL %+v, want interval 50 s, value in (90 s, 100 s]", real)
		}
		if p.Signals.PdeathSig != int32(syscall.SIGHUP) {
			t.Errorf("pdeathsig %d, want SIGHUP", p.Signals.PdeathSig)
		}
		if p.Creds.UID != 0 || p.Creds.EUID != 0 {
			t.Errorf("creds %+v, want root", p.Creds)
		}
	})
}

// TestFreezeTracedThread: a thread held in a ptrace stop by a tracer cannot capture itself; the
// freeze records it from the outside (general registers, no FP state) instead of waiting for it,
// and the thread runs on when the tracer detaches.
func TestFreezeTracedThread(t *testing.T) {
	guest := h.BuildC(t, "freeze_traced", "-pthread")
	h.ForEachPlatform(t, func(t *testing.T, platform string) {
		r, image := runFreezeGuest(t, platform, guest, "traced.img")
		if !strings.Contains(r.Stdout, "freeze=0 errno=0\nprogress=1") {
			t.Fatalf("guest output:\n%s", r)
		}
		p := decodeImage(t, image)
		if len(p.Threads) != 2 {
			t.Fatalf("image has %d threads, want 2", len(p.Threads))
		}
		if len(p.Threads[0].FPRegs) != 512 || len(p.Threads[1].FPRegs) != 0 {
			t.Errorf("FP state sizes %d and %d, want 512 (freezer) and 0 (recorded from outside)", len(p.Threads[0].FPRegs), len(p.Threads[1].FPRegs))
		}
		gdb := runTool(t, "gdb", "-batch", "-nx", "-ex", "thread apply all bt", guest, image)
		if !strings.Contains(gdb, "spin (") || !strings.Contains(gdb, " main (") {
			t.Errorf("gdb backtraces lack the traced thread's spin or main:\n%s", gdb)
		}
	})
}

// TestFreezeSnapshotConsistent: the other threads of a multi-threaded process run on while its
// image is written (copy-on-write snapshot), yet the image holds memory as of one instant. A worker
// rewrites a 16 MiB buffer in passes (pass n stores n in every page, in order) and completes passes
// during the freeze call (certainly: the image goes through a pipe whose reader thread holds the
// write back until the worker has done two passes); the image's buffer must read n+1 for pages
// 0..k-1 and n for the rest.
func TestFreezeSnapshotConsistent(t *testing.T) {
	guest := h.BuildC(t, "freeze_cow", "-pthread")
	h.ForEachPlatform(t, func(t *testing.T, platform string) {
		r, image := runFreezeGuest(t, platform, guest, "cow.img")
		m := regexp.MustCompile(`buffer=(0x[0-9a-f]+)\nfreeze=0 errno=0\npasses_during_freeze=(\d+)`).FindStringSubmatch(r.Stdout)
		if m == nil {
			t.Fatalf("guest output:\n%s", r)
		}
		if m[2] == "0" {
			t.Errorf("the worker made no progress during the freeze: the other threads were stopped while the image was written")
		}
		buf, _ := strconv.ParseUint(m[1], 0, 64)
		checkOneInstant(t, image, buf) // pause_test.go
	})
}

// TestFreezePipe: a freeze into a pipe whose slow reader copies it to a file blocks until the
// reader catches up and sends holes as zeros; the copy is a valid image whose fd table marks the
// pipe as the image.
func TestFreezePipe(t *testing.T) {
	guest := h.BuildC(t, "freeze_pipe")
	h.ForEachPlatform(t, func(t *testing.T, platform string) {
		s := h.NewSandbox(t, harness.Opts{Platform: platform, Persist: true})
		out := filepath.Join(s.Dir, "pipe.img")
		r := s.Run(t, s.DoArgs(guest, out)...)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "freeze=0 errno=0\nreader=0") {
			t.Fatalf("guest output:\n%s", r)
		}
		checkELFCore(t, out)
		p := decodeImage(t, out)
		var image *imgfmt.File
		for i := range p.Files {
			if p.Files[i].IsImage {
				image = &p.Files[i]
			}
		}
		if image == nil || image.Kind != imgfmt.FileFIFO || !strings.HasPrefix(image.Desc, "pipe:[") {
			t.Errorf("image fd = %+v, want the pipe marked IsImage", image)
		}
		// The image left its holes to the pipe's reader as zeros: nothing is sparse.
		st, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		if alloc := allocatedBytes(t, out); alloc < st.Size() {
			t.Errorf("streamed image: %d of %d bytes allocated, want all (zeros were written)", alloc, st.Size())
		}
	})
}

// TestFreezeIntoClosedPipe: a freeze into a pipe whose reader goes away mid-image fails with EPIPE
// and the process keeps running (issue 13 item 1: the pipe write used to raise SIGPIPE and kill it).
func TestFreezeIntoClosedPipe(t *testing.T) {
	guest := h.BuildC(t, "freeze_epipe")
	h.ForEachPlatform(t, func(t *testing.T, platform string) {
		s := h.NewSandbox(t, harness.Opts{Platform: platform, Persist: true})
		errf := filepath.Join(s.Dir, "guest.err")
		script := fmt.Sprintf("%s 2>%s | head -c 100000 >/dev/null; echo status=${PIPESTATUS[0]}", guest, errf)
		r := s.Run(t, s.DoArgs("/bin/bash", "-c", script)...)
		r.WantExit(t, 0)
		msg, err := os.ReadFile(errf)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(msg); got != "r=-1 errno=32 alive=1\n" || !strings.Contains(r.Stdout, "status=0") {
			t.Errorf("guest stderr %q, shell %q; want r=-1 errno=32 (EPIPE) alive=1 and exit status 0", got, r.Stdout)
		}
	})
}

// TestFreezeExitedLeader: another process freezes a process whose main thread has exited
// (pthread_exit) while a worker thread runs (issue 13 item 2: ESRCH before), and the image thaws:
// the worker goes on and finishes.
func TestFreezeExitedLeader(t *testing.T) {
	guest := h.BuildC(t, "leader_exit", "-pthread")
	h.ForEachPlatform(t, func(t *testing.T, platform string) {
		s := h.NewSandbox(t, harness.Opts{Platform: platform, Persist: true})
		img := filepath.Join(s.Dir, "leader.img")
		script := fmt.Sprintf(`%[1]s %[2]s > %[2]s/out & pid=$!
until grep -q ready %[2]s/out; do sleep 0.05; done; sleep 0.1
%[3]s checkpt -c $pid -o %[4]s; echo freeze=$?
kill -9 $pid; wait $pid; touch %[2]s/stop
%[3]s checkpt -r %[4]s`, guest, s.Dir, h.Bin, img)
		r := s.Run(t, s.DoArgs("/bin/sh", "-c", script)...)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "freeze=0\n") || !strings.Contains(r.Stdout, "worker done n=") {
			t.Fatalf("want freeze=0 and the thawed worker finishing:\n%s", r)
		}
		if p := decodeImage(t, img); len(p.Threads) != 1 {
			t.Errorf("image has %d threads, want the one live worker", len(p.Threads))
		}
	})
}
