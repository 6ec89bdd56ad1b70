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
	"sort"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// Thaw tests: a guest freezes itself and kills itself (as if killed after the freeze); a NEW sandbox
// thaws the image with the guest tool `checkpt -r` (the runsc-ckpt binary itself); the thawed
// guest checks its own state and says so. Every sandbox persists its writes (the image, logs).

// frozenGuest runs argv in a new sandbox on platform p and checks that it froze (prints want0) and
// was then killed by its own SIGKILL.
func frozenGuest(t *testing.T, p string, want0 string, argv ...string) *harness.Result {
	t.Helper()
	r := h.Do(t, harness.Opts{Platform: p, Persist: true}, argv...)
	r.WantExit(t, 128+9)
	if !strings.Contains(r.Stdout, want0) {
		t.Fatalf("the freeze did not print %q:\n%s", want0, r)
	}
	return r
}

// checkpt runs `runsc-ckpt checkpt args...` (or a shell command line using it, if sh is set) in a
// new sandbox on platform p.
func checkpt(t *testing.T, p string, args ...string) *harness.Result {
	t.Helper()
	return h.Do(t, harness.Opts{Platform: p, Persist: true}, append([]string{h.Bin, "checkpt"}, args...)...)
}

// roundtripFiles makes a new directory for thaw_roundtrip and returns its arguments there: the
// image's path, the file it maps (8 KiB of 'A') and its log file.
func roundtripFiles(t *testing.T) (img, mapFile, logFile string) {
	t.Helper()
	dir := h.NewDir(t)
	img, mapFile, logFile = filepath.Join(dir, "rt.ckpt"), filepath.Join(dir, "map.dat"), filepath.Join(dir, "log.txt")
	if err := os.WriteFile(mapFile, []byte(strings.Repeat("A", 8192)), 0o644); err != nil {
		t.Fatal(err)
	}
	return img, mapFile, logFile
}

// roundtripThawed is the line a thawed thaw_roundtrip prints when every check passed, for the
// checksum sum its freeze printed.
func roundtripThawed(sum string) string {
	return fmt.Sprintf("r=1 errno=0 sum=%s map=AZ regs=1 usr1=1 usr2blocked=1 termign=1 clock=1 alt=1 itimer=1 pending=1", sum)
}

// TestThawRoundtrip freezes thaw_roundtrip, kills it, and thaws it in a new sandbox five ways:
// `runsc-ckpt checkpt -r IMAGE`, a binary named checkpt (argv[0]), `cat IMAGE | checkpt -r -` (a
// pipe: the non-seekable path), `checkpt -r -` reading from a socket (a migration) and a C thawer
// that leaves a pending signal and an armed timer behind. The thawed program finds its memory (checksum), registers
// (xmm0-15, rbx, r12-r15 live across the syscall), private file mapping, signal handler / blocked
// mask / ignored signal / pending signal, alternate stack, interval timer and the vDSO clocks as
// they must be, and its sys_checkpoint returned 1;
// the log file continues at the frozen offset.
func TestThawRoundtrip(t *testing.T) {
	guest := h.BuildC(t, "thaw_roundtrip")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		img, mapf, logf := roundtripFiles(t)
		dir := filepath.Dir(img)
		frozen := frozenGuest(t, p, "r=0 errno=0", guest, img, mapf, logf)
		sum := field(frozen.Stdout, "sum")
		if sum == "" {
			t.Fatalf("no checksum:\n%s", frozen)
		}
		// The name, executable, argv, brk and vDSO (auxv and /proc/self/auxv agree) must be as
		// they were, and brk must still grow.
		meta := regexp.MustCompile(`(?m)^comm=.*$`).FindString(frozen.Stdout)
		if meta == "" || field(meta, "vdso") != field(meta, "procvdso") || field(meta, "brkgrow") != "1" {
			t.Fatalf("bad metadata before the thaw: %q\n%s", meta, frozen)
		}
		sockHelper := filepath.Join(h.Root, "test", "guests", "thaw_socket.py")
		cThawer := h.BuildC(t, "thaw_bad")
		link := filepath.Join(dir, "checkpt")
		if err := os.Symlink(h.Bin, link); err != nil {
			t.Fatal(err)
		}
		opts := harness.Opts{Platform: p, Persist: true}
		for name, r := range map[string]func() *harness.Result{
			"subcommand": func() *harness.Result { return checkpt(t, p, "-r", img) },
			"argv0":      func() *harness.Result { return h.Do(t, opts, link, "-r", img) },
			"pipe":       func() *harness.Result { return h.Do(t, opts, "/bin/sh", "-c", "cat "+img+" | "+link+" -r -") },
			"socket":     func() *harness.Result { return h.Do(t, opts, "/usr/bin/python3", sockHelper, img, h.Bin) },
			// A C thawer with a pending SIGHUP and an armed ITIMER_VIRTUAL: neither may reach the
			// thawed program (either would kill it).
			"dirty_thawer": func() *harness.Result { return h.Do(t, opts, cThawer, img, "dirty") },
		} {
			t.Run(name, func(t *testing.T) {
				res := r()
				res.WantExit(t, 0)
				want := roundtripThawed(sum)
				if !strings.Contains(res.Stdout, want) {
					t.Errorf("thawed guest printed something else; want %q:\n%s", want, res)
				}
				if !strings.Contains(res.Stdout, meta) {
					t.Errorf("metadata changed by the thaw; want %q:\n%s", meta, res)
				}
				log, err := os.ReadFile(logf)
				if err != nil {
					t.Fatal(err)
				}
				if string(log) != "before\nafter r=1\n" {
					t.Errorf("log = %q, want the thawed write at the frozen offset: %q", log, "before\nafter r=1\n")
				}
			})
		}
	})
}

// TestThawThreads: the 4-thread guest's workers keep running after a thaw, can be joined, and
// their TLS and a shared mutex are intact; also after the thawed process froze again and the first
// image was deleted.
func TestThawThreads(t *testing.T) {
	guest := h.BuildC(t, "thaw_threads", "-pthread")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		dir := h.NewDir(t)
		img := filepath.Join(dir, "threads.ckpt")
		// Under a shell the guest is not pid 1, the thawed process (checkpt run directly) is: every
		// tid changes, the main thread's too.
		frozenGuest(t, p, "r=0 errno=0", "/bin/sh", "-c", guest+" "+img+"; exit $?")
		r := checkpt(t, p, "-r", img)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "r=1 errno=0\nprogress=1 joined=3 tls=1 mutex=1 signals=1 scratch_gone=1\n") {
			t.Errorf("thawed threads:\n%s", r)
		}

		img2 := filepath.Join(dir, "threads2.ckpt")
		frozenGuest(t, p, "r=0 errno=0", guest, img, img2)
		r = checkpt(t, p, "-r", img)
		r.WantExit(t, 128+9)
		if !strings.Contains(r.Stdout, "r=1 errno=0\nr2=0 errno=0\n") {
			t.Fatalf("the thawed threads did not freeze again:\n%s", r)
		}
		if err := os.Remove(img); err != nil {
			t.Fatal(err)
		}
		r = checkpt(t, p, "-r", img2)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "r2=1 errno=0\nprogress=1 joined=3 tls=1 mutex=1 signals=1 scratch_gone=1\n") {
			t.Errorf("threads thawed from the second generation:\n%s", r)
		}
	})
}

// TestThawThreadsMusl: the same 4-thread guest linked with musl, whose thread library keeps tids
// elsewhere than glibc (thread descriptor, not clear_child_tid): after a thaw in which every tid
// changed, pthread_kill must still reach the right threads and join must work.
func TestThawThreadsMusl(t *testing.T) {
	dir := h.NewDir(t)
	guest := filepath.Join(dir, "thaw_threads_musl")
	src := filepath.Join(h.Root, "test", "guests", "thaw_threads.c")
	if out, err := exec.Command("musl-gcc", "-static", "-O1", "-Wall", "-Werror", "-I", filepath.Join(h.Root, "include"), "-o", guest, src, "-lpthread").CombinedOutput(); err != nil {
		t.Fatalf("musl-gcc (Debian: musl-tools, installed by .ci/run): %v\n%s", err, out)
	}
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		img := filepath.Join(h.NewDir(t), "musl.ckpt")
		frozenGuest(t, p, "r=0 errno=0", "/bin/sh", "-c", guest+" "+img+"; exit $?")
		r := checkpt(t, p, "-r", img)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "r=1 errno=0\nprogress=1 joined=3 tls=1 mutex=1 signals=1 scratch_gone=1\n") {
			t.Errorf("thawed musl threads:\n%s", r)
		}
	})
}

// TestThawSIGCKPTImage thaws the image SIGCKPT wrote (the ckpt-file, %N.ckpt in the process's
// working directory) of a process sleeping in nanosleep: the sleep goes on (its interrupted
// syscall is restarted, its rax untouched by the thaw's retval).
func TestThawSIGCKPTImage(t *testing.T) {
	sleeper := h.BuildC(t, "sleeper")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		dir := h.NewDir(t)
		script := fmt.Sprintf("cd %s && %s 5 & P=$!; sleep 0.5; kill -%s $P; sleep 0.5; kill -9 $P", dir, sleeper, sigckptArg)
		sig := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c", script)
		// %N is the process name, the guest binary's base name (the harness may suffix it).
		imgs, _ := filepath.Glob(filepath.Join(dir, "*.ckpt"))
		if len(imgs) != 1 {
			t.Fatalf("SIGCKPT wrote %d images, want 1:\n%s", len(imgs), sig)
		}
		img := imgs[0]
		r := checkpt(t, p, "-r", img)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "slept 5 s\n") {
			t.Errorf("the thawed sleeper did not finish:\n%s", r)
		}
	})
}

// TestThawGo: a Go program's goroutines, channels, timers and GC keep working after a thaw.
func TestThawGo(t *testing.T) {
	guest := h.BuildGo(t, "thawgo")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		img := filepath.Join(h.NewDir(t), "go.ckpt")
		frozenGuest(t, p, "r=0 errno=0", guest, img)
		r := checkpt(t, p, "-r", img)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "map=true ticks=true timer=true workers=true gc=true") {
			t.Errorf("thawed Go guest:\n%s", r)
		}
	})
}

// TestThawPython: python3 (dynamically linked: its libraries are mapped by reference) continues its
// computation after a thaw with its objects intact.
func TestThawPython(t *testing.T) {
	script := filepath.Join(h.Root, "test", "guests", "thaw_py.py")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		img := filepath.Join(h.NewDir(t), "py.ckpt")
		frozenGuest(t, p, "r=0 errno=0", "/usr/bin/python3", script, img)
		r := checkpt(t, p, "-r", img)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "objects=True result=2666646666700000") {
			t.Errorf("thawed python3:\n%s", r)
		}
	})
}

// TestThawGenerations thaws, re-freezes and thaws again three times, deleting every image once the
// next one exists, alternating platforms when there are two.
func TestThawGenerations(t *testing.T) {
	guest := h.BuildC(t, "thaw_generations")
	dir := h.NewDir(t)
	plat := func(i int) string { return h.Platforms[i%len(h.Platforms)] }
	r := frozenGuest(t, plat(0), "gen=1 r=0", guest, dir)
	sums := []string{field(r.Stdout, "sum")}
	for gen := 1; gen <= 3; gen++ {
		img := filepath.Join(dir, fmt.Sprintf("gen%d.ckpt", gen))
		r := checkpt(t, plat(gen), "-r", img)
		if err := os.Remove(img); err != nil {
			t.Fatalf("deleting generation %d: %v", gen, err)
		}
		if !strings.Contains(r.Stdout, fmt.Sprintf("gen=%d r=1 sum=%s\n", gen, sums[gen-1])) {
			t.Fatalf("generation %d did not resume with its state (sum %s):\n%s", gen, sums[gen-1], r)
		}
		if gen < 3 {
			r.WantExit(t, 128+9)
			i := strings.Index(r.Stdout, fmt.Sprintf("gen=%d r=0 ", gen+1))
			if i < 0 {
				t.Fatalf("generation %d did not freeze again:\n%s", gen+1, r)
			}
			sums = append(sums, field(r.Stdout[i:], "sum"))
		} else {
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, "done\n") {
				t.Errorf("last generation did not finish:\n%s", r)
			}
		}
	}
}

// TestThawBadImages: garbage, truncated and tampered images, an image from another vDSO build and
// (on systrap) one with a mapping above the platform's user range fail with EINVAL, an fd above
// RLIMIT_NOFILE with EMFILE, an image whose mapped file changed or vanished with ESTALE; each time
// the caller keeps running. checkpt exits 5 and says why.
func TestThawBadImages(t *testing.T) {
	bad := h.BuildC(t, "thaw_bad")
	basic := h.BuildC(t, "freeze_basic")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		dir := h.NewDir(t)
		good, mapf, logf := filepath.Join(dir, "good.ckpt"), filepath.Join(dir, "map.dat"), filepath.Join(dir, "log.txt")
		if err := os.WriteFile(mapf, []byte(strings.Repeat("M", 4096)), 0o644); err != nil {
			t.Fatal(err)
		}
		r := h.Do(t, harness.Opts{Platform: p, Persist: true}, basic, good, mapf, logf)
		r.WantExit(t, 0)
		img, err := os.ReadFile(good)
		if err != nil {
			t.Fatal(err)
		}
		write := func(name string, b []byte) string {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			return path
		}
		garbage := make([]byte, 1<<16)
		for i := range garbage {
			garbage[i] = byte(i*7 + i/251)
		}
		// shell, if set, is a shell command line to run instead of the guest on image.
		cases := []struct{ name, image, want, shell string }{
			{name: "garbage", image: write("garbage.ckpt", garbage), want: "EINVAL"},
			{name: "empty", image: write("empty.ckpt", nil), want: "EINVAL"},
			{name: "truncated", image: write("truncated.ckpt", img[:len(img)/2]), want: "EINVAL"},
			{name: "tampered_phdr", image: write("tampered.ckpt", tamperLoad(t, img)), want: "EINVAL"},
			{name: "truncated_pipe", shell: "head -c 20000 " + good + " | " + bad + " -", want: "EINVAL"},
			{name: "other_vdso", image: write("vdso.ckpt", reencode(t, img, func(p *imgfmt.Process) { p.VM.VDSOHash[0] ^= 1 })), want: "EINVAL"},
			{name: "fd_over_rlimit_nofile", shell: "ulimit -n 5 && exec " + bad + " " + good, want: "EMFILE"},
		}
		// ptrace places mappings where systrap cannot: a mapping above systrap's
		// MaxUserAddress (0x7f0000000000) is refused there before anything changes.
		high := write("high.ckpt", reencode(t, img, func(p *imgfmt.Process) {
			m := imgfmt.Mapping{Start: 0x7f0000000000, End: 0x7f0000001000, Prot: imgfmt.ProtRead, Kind: imgfmt.MapZero}
			i := sort.Search(len(p.Mappings), func(i int) bool { return p.Mappings[i].Start >= m.Start })
			p.Mappings = append(p.Mappings[:i], append([]imgfmt.Mapping{m}, p.Mappings[i:]...)...)
		}))
		if p == "systrap" {
			cases = append(cases, struct{ name, image, want, shell string }{name: "above_platform_range", image: high, want: "EINVAL"})
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				argv := []string{bad, c.image}
				if c.shell != "" {
					argv = []string{"/bin/sh", "-c", c.shell}
				}
				r := h.Do(t, harness.Opts{Platform: p, Persist: true}, argv...)
				r.WantExit(t, 0)
				if want := "thaw=-1 errno=" + c.want + "\nalive canary=5eed\n"; !strings.Contains(r.Stdout, want) {
					t.Errorf("want %q:\n%s", want, r)
				}
			})
		}
		// The image maps map.dat read-only and unmodified: stored by reference, so a change to the
		// file (or its removal) must make the thaw fail with ESTALE.
		t.Run("changed_file", func(t *testing.T) {
			if err := os.WriteFile(mapf, []byte(strings.Repeat("N", 4097)), 0o644); err != nil {
				t.Fatal(err)
			}
			r := h.Do(t, harness.Opts{Platform: p, Persist: true}, bad, good)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, "thaw=-1 errno=ESTALE\nalive canary=5eed\n") {
				t.Errorf("want ESTALE:\n%s", r)
			}
			os.Remove(mapf)
			r = checkpt(t, p, "-r", good)
			r.WantExit(t, 5)
			if !strings.Contains(r.Stderr, "checkpt: thaw of "+good+" failed: stale") {
				t.Errorf("checkpt's message:\n%s", r)
			}
		})
	})
}

// reencode decodes img, lets change modify the process, and encodes it again.
func reencode(t *testing.T, img []byte, change func(*imgfmt.Process)) []byte {
	t.Helper()
	p, err := imgfmt.Decode(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatalf("decoding the good image: %v", err)
	}
	change(p)
	var b bytes.Buffer
	if err := imgfmt.Encode(&b, p); err != nil {
		t.Fatalf("encoding the changed image: %v", err)
	}
	return b.Bytes()
}

// tamperLoad returns a copy of img whose first PT_LOAD starts one byte off its page.
func tamperLoad(t *testing.T, img []byte) []byte {
	t.Helper()
	f, err := elf.NewFile(strings.NewReader(string(img)))
	if err != nil {
		t.Fatalf("the good image does not parse: %v", err)
	}
	out := append([]byte(nil), img...)
	phoff := binary.LittleEndian.Uint64(img[32:])
	for i, ph := range f.Progs {
		if ph.Type == elf.PT_LOAD {
			at := phoff + uint64(i)*56 + 16 // p_vaddr
			binary.LittleEndian.PutUint64(out[at:], ph.Vaddr+1)
			return out
		}
	}
	t.Fatal("the good image has no PT_LOAD")
	return nil
}

// TestCheckptFreezeOther: `checkpt -c PID -o FILE` freezes another process (here a sleeper, in
// nanosleep); the process is killed and the image thawed in a new sandbox, where the sleep goes on
// and the program finishes. A pid that does not exist makes checkpt exit 5 with a message.
func TestCheckptFreezeOther(t *testing.T) {
	sleeper := h.BuildC(t, "sleeper")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		img := filepath.Join(h.NewDir(t), "other.ckpt")
		script := fmt.Sprintf("%s 5 & P=$!; sleep 0.5; %s checkpt -c $P -o %s; echo checkpt=$?; kill -9 $P; %s checkpt -c 4242; echo missing=$?",
			sleeper, h.Bin, img, h.Bin)
		r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c", script)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "checkpt=0\n") || !strings.Contains(r.Stdout, "missing=5\n") {
			t.Fatalf("checkpt -c:\n%s", r)
		}
		if !strings.Contains(r.Stderr, "checkpt: freeze of process 4242 failed: no such process") {
			t.Errorf("checkpt's message for a missing pid:\n%s", r)
		}
		r = checkpt(t, p, "-r", img)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "slept 5 s\n") {
			t.Errorf("the thawed sleeper did not finish:\n%s", r)
		}
	})
}

// TestCheckptFreezeToStdout: `checkpt -c PID -o /dev/stdout` writes the image into checkpt's
// stdout (here a pipe into cat, redirected to a file), and /dev/stdout is still the link it was:
// checkpt once unlinked the output path first, replacing /dev/stdout with a regular file.
func TestCheckptFreezeToStdout(t *testing.T) {
	sleeper := h.BuildC(t, "sleeper")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		img := filepath.Join(h.NewDir(t), "stdout.ckpt")
		script := fmt.Sprintf("%s 5 & P=$!; sleep 0.5; %s checkpt -c $P -o /dev/stdout | cat > %s; echo checkpt=$?; "+
			"kill -9 $P; if [ -L /dev/stdout ]; then echo link=kept; else echo link=gone; fi",
			sleeper, h.Bin, img)
		r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c", script)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "checkpt=0\n") || !strings.Contains(r.Stdout, "link=kept\n") {
			t.Fatalf("checkpt -c -o /dev/stdout:\n%s", r)
		}
		decodeImage(t, img)
		r = checkpt(t, p, "-r", img)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "slept 5 s\n") {
			t.Errorf("the sleeper thawed from the streamed image did not finish:\n%s", r)
		}
	})
}

// TestThawFdKinds: fds of every kind come back at their numbers as docs/notes-thaw.md says: files,
// directories, devices and O_PATH fds reopened (a file at its offset, with FD_CLOEXEC and O_RDWR),
// the image fd on what the thawer passed (the image, or the pipe of a streamed image),
// sockets as a pipe end whose peer is gone (EOF, EPIPE; O_NONBLOCK kept), the pipe rebuilt
// connected with its unread byte, the eventfd rebuilt with its count and mode, the memfd with its
// contents and offset, the epoll with its (empty) interest list.
func TestThawFdKinds(t *testing.T) {
	guest := h.BuildC(t, "thaw_kinds")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		dir := h.NewDir(t)
		data := filepath.Join(dir, "data")
		if err := os.WriteFile(data, bytes.Repeat([]byte("0123456789abcdef"), 1024), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("data", filepath.Join(dir, "link")); err != nil {
			t.Fatal(err)
		}
		img := filepath.Join(dir, "kinds.ckpt")
		frozenGuest(t, p, "r=0 errno=0", guest, img, dir)
		const want = "pipe_r=1 pipe_w=1 sock=1 eventfd=1 null=1 dir=1 opath=1 memfd=1 file=1 epoll=1 image="
		r := checkpt(t, p, "-r", img)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, want+"file\n") {
			t.Errorf("want %q:\n%s", want+"file", r)
		}
		// Streamed: the image fd is the pipe the image came through, not the memory copy.
		r = h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c", "cat "+img+" | "+h.Bin+" checkpt -r -")
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, want+"pipe\n") {
			t.Errorf("want %q:\n%s", want+"pipe", r)
		}
	})
}

// TestThawFreezeGuests round-trips the freeze tests' guests: each freezes itself and exits (as if
// killed), and is thawed in a new sandbox, where its sys_checkpoint returns 1 and it goes on.
func TestThawFreezeGuests(t *testing.T) {
	basic := h.BuildC(t, "freeze_basic")
	threads := h.BuildC(t, "freeze_threads", "-pthread")
	signals := h.BuildC(t, "freeze_signals")
	goGuest := h.BuildGo(t, "freezego")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		dir := h.NewDir(t)
		mapf, logf := filepath.Join(dir, "map.dat"), filepath.Join(dir, "log.txt")
		if err := os.WriteFile(mapf, []byte(strings.Repeat("M", 4096)), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name     string
			argv     []string // "@" stands for the image path
			thawExit int
			want     []string
		}{
			{"freeze_basic", []string{basic, "@", mapf, logf}, 1, []string{"freeze=1 errno=0 global=0x1234abcd5678 map0=M\nalive\n"}},
			{"freeze_threads", []string{threads, "@"}, 1, []string{"freeze=1 errno=0\nprogress=1\n"}},
			{"freeze_signals", []string{signals, "@"}, 1, []string{"freeze=1 errno=0\n"}},
			{"freezego", []string{goGuest, "@"}, 0, []string{"freeze=1 errno=0\nalive true"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				img := filepath.Join(dir, c.name+".ckpt")
				argv := append([]string(nil), c.argv...)
				for i := range argv {
					if argv[i] == "@" {
						argv[i] = img
					}
				}
				r := h.Do(t, harness.Opts{Platform: p, Persist: true}, argv...)
				r.WantExit(t, 0)
				r = checkpt(t, p, "-r", img)
				r.WantExit(t, c.thawExit)
				for _, w := range c.want {
					if !strings.Contains(r.Stdout, w) {
						t.Errorf("want %q:\n%s", w, r)
					}
				}
			})
		}
		if log, err := os.ReadFile(logf); err != nil || string(log) != "before freeze\nafter freeze\nafter freeze\n" {
			t.Errorf("freeze_basic's log (O_APPEND) = %q, %v; want the thawed write appended", log, err)
		}
	})
}

// TestThawInBundle: inside an OCI container (runsc-ckpt create/start), as an unprivileged user, a
// guest freezes itself and is killed, and the same container thaws it with the checkpt tool: the
// same-sandbox path, with the container's own rootfs mounts and credentials.
func TestThawInBundle(t *testing.T) {
	guest := h.BuildC(t, "thaw_roundtrip")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		dir := h.NewDir(t)
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		img, mapf, logf := filepath.Join(dir, "b.ckpt"), filepath.Join(dir, "map.dat"), filepath.Join(dir, "log.txt")
		if err := os.WriteFile(mapf, []byte(strings.Repeat("A", 8192)), 0o644); err != nil {
			t.Fatal(err)
		}
		script := fmt.Sprintf("%s %s %s %s; echo killed=$?; exec %s checkpt -r %s", guest, img, mapf, logf, h.Bin, img)
		c := h.Bundle(t, harness.BundleOpts{
			Opts: harness.Opts{Platform: p, Persist: true},
			Args: []string{"/bin/sh", "-c", script},
			Cwd:  dir,
			User: specs.User{UID: 65534, GID: 65534},
		})
		c.Create(t)
		c.Start(t)
		if code := c.Wait(t); code != 0 {
			t.Errorf("container exit status %d, want 0; stdout:\n%s\nstderr:\n%s", code, c.GuestStdout(), c.GuestStderr())
		}
		out := c.GuestStdout()
		for _, want := range []string{"r=0 errno=0 ", "killed=137\n", "r=1 errno=0 "} {
			if !strings.Contains(out, want) {
				t.Errorf("container stdout lacks %q:\n%s", want, out)
			}
		}
		if sum0, sum1 := field(out, "sum"), field(out[strings.Index(out, "r=1 "):], "sum"); sum0 == "" || sum0 != sum1 {
			t.Errorf("memory checksum %q before, %q after the thaw", sum0, sum1)
		}
		c.Delete(t, false)
	})
}
