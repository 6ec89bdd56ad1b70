package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// Tests of core dumps (docs/cores.md): test/guests/core_crash.c forks a child that dies of a
// "core" signal and prints its wait status; the test checks the status (WCOREDUMP), the core file
// in the guest's working directory (decoded with pkg/imgfmt, read by gdb and readelf).

// coreChild parses core_crash's report: the child's pid, its signal and WCOREDUMP.
func coreChild(t *testing.T, out string) (pid, sig int, core bool) {
	t.Helper()
	m := regexp.MustCompile(`child (\d+) signaled (\d+) core (\d)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("guest output has no \"child N signaled S core C\" line:\n%s", out)
	}
	pid, _ = strconv.Atoi(m[1])
	sig, _ = strconv.Atoi(m[2])
	return pid, sig, m[3] == "1"
}

// runCoreGuest runs core_crash with args on platform p, the sandbox's policy flags given, and
// returns the guest's output and its working directory.
func runCoreGuest(t *testing.T, p string, flags []string, args ...string) (string, string) {
	t.Helper()
	guest := h.BuildC(t, "core_crash", "-pthread")
	r := h.Do(t, harness.Opts{Platform: p, Persist: true, Flags: flags}, append([]string{guest}, args...)...)
	r.WantExit(t, 0)
	return r.Stdout, r.Sandbox.Dir
}

// gdbBacktrace runs gdb's bt on prog and core and returns its output.
func gdbBacktrace(t *testing.T, prog, core string) string {
	t.Helper()
	out, err := exec.Command("gdb", "-nx", "-batch", "-ex", "bt", prog, core).CombinedOutput()
	if err != nil {
		t.Fatalf("gdb -batch -ex bt %s %s: %v\n%s", prog, core, err, out)
	}
	return string(out)
}

func TestCoreSegv(t *testing.T) {
	guest := h.BuildC(t, "core_crash", "-pthread")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		out, dir := runCoreGuest(t, p, nil, "segv")
		pid, sig, dumped := coreChild(t, out)
		if sig != 11 || !dumped {
			t.Fatalf("child ended with signal %d, WCOREDUMP %v; want 11 and true", sig, dumped)
		}
		core := filepath.Join(dir, "core")
		img := decodeCkptFile(t, core)
		if img.Info.PID != int32(pid) {
			t.Errorf("core of pid %d, want the child %d", img.Info.PID, pid)
		}
		if len(img.Threads) != 2 {
			t.Errorf("core has %d threads, want 2 (the crashing one and the idle one)", len(img.Threads))
		} else if img.Threads[0].TID != int32(pid) {
			t.Errorf("first thread of the core is %d, want the faulting thread %d", img.Threads[0].TID, pid)
		}
		si := img.SigInfo
		if si == nil || si.Signo != 11 || si.Code != 1 || si.Addr != 0 {
			t.Errorf("NT_SIGINFO = %+v, want SIGSEGV SEGV_MAPERR at address 0", si)
		}
		bt := gdbBacktrace(t, guest, core)
		if !strings.Contains(bt, "crash_here") || !strings.Contains(bt, "SIGSEGV") {
			t.Errorf("gdb's backtrace does not name crash_here and SIGSEGV:\n%s", bt)
		}
		if !regexp.MustCompile(`core_crash\.c:\d+`).MatchString(bt) {
			t.Errorf("gdb's backtrace has no source line:\n%s", bt)
		}
		// A core is a complete image: it thaws, and the thawed process re-executes the faulting
		// instruction and dies of SIGSEGV again, leaving a new core.
		thawDir := h.NewDir(t)
		thawed := h.Do(t, harness.Opts{Platform: p, Persist: true, Cwd: thawDir}, h.Bin, "checkpt", "-r", core)
		if thawed.ExitCode != 128+11 {
			t.Errorf("thawing the core: exit code %d, want %d (SIGSEGV again):\n%s", thawed.ExitCode, 128+11, thawed)
		} else if again := decodeCkptFile(t, core); again.SigInfo == nil || again.SigInfo.Signo != 11 || again.Info.Name != img.Info.Name || again.Info.FreezeTimeNano <= img.Info.FreezeTimeNano {
			t.Errorf("the thawed process left no new core (got %q, siginfo %+v, time %d; want %q, SIGSEGV, after %d)", again.Info.Name, again.SigInfo, again.Info.FreezeTimeNano, img.Info.Name, img.Info.FreezeTimeNano)
		}
		re, err := exec.Command("readelf", "-n", core).CombinedOutput()
		if err != nil || !strings.Contains(string(re), "NT_SIGINFO") || strings.Count(string(re), "NT_PRSTATUS") != 2 {
			t.Errorf("readelf -n %s: %v, want NT_SIGINFO and two NT_PRSTATUS:\n%s", core, err, re)
		}
	})
}

func TestCorePattern(t *testing.T) {
	guest := h.BuildC(t, "core_crash", "-pthread")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		for _, tc := range []struct {
			mode, pattern, name string // name: %d for the child's pid
			sig                 int
		}{
			{"segv", "core.%e.%p", "core." + comm(guest) + ".%d", 11},
			{"abort", "%e-%s.%%.core", comm(guest) + "-6.%.core", 6},
		} {
			t.Run(tc.mode, func(t *testing.T) {
				out, dir := runCoreGuest(t, p, []string{"--core-pattern=" + tc.pattern}, tc.mode)
				pid, sig, dumped := coreChild(t, out)
				if sig != tc.sig || !dumped {
					t.Fatalf("child ended with signal %d, WCOREDUMP %v; want %d and true", sig, dumped, tc.sig)
				}
				name := strings.ReplaceAll(tc.name, "%d", strconv.Itoa(pid))
				img := decodeCkptFile(t, filepath.Join(dir, name))
				if img.SigInfo == nil || img.SigInfo.Signo != int32(tc.sig) || !img.CoreDump {
					t.Errorf("core %s: NT_SIGINFO %+v, core dump %v; want signal %d", name, img.SigInfo, img.CoreDump, tc.sig)
				}
				if tc.sig == 6 && (img.SigInfo == nil || img.SigInfo.Code != siTkill || img.SigInfo.PID != int32(pid)) {
					// abort() sends SIGABRT to itself with tgkill.
					t.Errorf("core %s: NT_SIGINFO %+v, want SI_TKILL from pid %d", name, img.SigInfo, pid)
				}
				if _, err := os.Stat(filepath.Join(dir, "core")); err == nil {
					t.Errorf("a file named core exists besides %s", name)
				}
			})
		}
	})
}

func TestCoreLimits(t *testing.T) {
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		t.Run("rlimit0", func(t *testing.T) {
			out, dir := runCoreGuest(t, p, nil, "segv-nocore")
			if _, sig, dumped := coreChild(t, out); sig != 11 || dumped {
				t.Fatalf("child ended with signal %d, WCOREDUMP %v; want 11 and false", sig, dumped)
			}
			wantNoCore(t, dir)
		})
		t.Run("disabled", func(t *testing.T) {
			out, dir := runCoreGuest(t, p, []string{"--core-pattern="}, "segv")
			if _, sig, dumped := coreChild(t, out); sig != 11 || dumped {
				t.Fatalf("child ended with signal %d, WCOREDUMP %v; want 11 and false", sig, dumped)
			}
			wantNoCore(t, dir)
		})
		if p == "systrap" {
			// A process the capture refuses (systrap's syscall patching left a [usertrap] mapping)
			// gets no core, and no empty file is left behind.
			t.Run("capture_fails", func(t *testing.T) {
				out, dir := runCoreGuest(t, p, []string{"--systrap-disable-syscall-patching=false"}, "segv")
				if _, sig, dumped := coreChild(t, out); sig != 11 || dumped {
					t.Fatalf("child ended with signal %d, WCOREDUMP %v; want 11 and false", sig, dumped)
				}
				wantNoCore(t, dir)
			})
		}
		t.Run("capped", func(t *testing.T) {
			const limit = 64 << 10
			out, dir := runCoreGuest(t, p, nil, "segv-limit", strconv.Itoa(limit))
			if _, sig, dumped := coreChild(t, out); sig != 11 || dumped {
				t.Fatalf("child ended with signal %d, WCOREDUMP %v; want 11 and false (cut core)", sig, dumped)
			}
			st, err := os.Stat(filepath.Join(dir, "core"))
			if err != nil {
				t.Fatalf("no cut core: %v", err)
			}
			if st.Size() > limit || st.Size() == 0 {
				t.Errorf("core is %d bytes, want 1 … %d (RLIMIT_CORE)", st.Size(), limit)
			}
		})
	})
}

// wantNoCore fails unless dir holds no file whose name starts with "core".
func wantNoCore(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "core") || strings.HasPrefix(e.Name(), ".core") {
			t.Errorf("unexpected core file %s", e.Name())
		}
	}
}

// TestCoreTwoThreadsFault: two threads fault at the same moment. The second waits in gVisor's event
// channel while the first dumps (docs/cores.md, step 2): there must be one core with both threads,
// the faulting one first, and no hang.
func TestCoreTwoThreadsFault(t *testing.T) {
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		for i := range 3 {
			out, dir := runCoreGuest(t, p, nil, "segv-both")
			if _, sig, dumped := coreChild(t, out); sig != 11 || !dumped {
				t.Fatalf("run %d: child ended with signal %d, WCOREDUMP %v; want 11 and true", i, sig, dumped)
			}
			img := decodeCkptFile(t, filepath.Join(dir, "core"))
			if len(img.Threads) != 2 || img.SigInfo == nil || img.SigInfo.Signo != 11 {
				t.Errorf("run %d: core has %d threads, siginfo %+v; want 2 and SIGSEGV", i, len(img.Threads), img.SigInfo)
			}
		}
	})
}

func TestCoreGoPanic(t *testing.T) {
	prog := h.BuildGo(t, "coregopanic")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		out, dir := runCoreGuest(t, p, nil, "exec", prog)
		if _, sig, dumped := coreChild(t, out); sig != 6 || !dumped {
			t.Fatalf("child ended with signal %d, WCOREDUMP %v; want 6 (SIGABRT) and true", sig, dumped)
		}
		core := filepath.Join(dir, "core")
		img := decodeCkptFile(t, core)
		if img.SigInfo == nil || img.SigInfo.Signo != 6 || len(img.Threads) < 2 {
			t.Errorf("core: NT_SIGINFO %+v, %d threads; want SIGABRT and the runtime's threads", img.SigInfo, len(img.Threads))
		}
		bt := gdbBacktrace(t, prog, core)
		if !strings.Contains(bt, "SIGABRT") || !strings.Contains(bt, "main.explode") {
			t.Errorf("gdb's backtrace of the Go core does not show SIGABRT and main.explode:\n%s", bt)
		}
	})
}
