package test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// stoppedScript starts a job (counterJob unless a test says otherwise) that appends lines to out,
// stops it with @SIG@ once it has counted, writes its pid to stopped.pid and says ready when /proc
// shows it stopped and none of its children still runs. The init then waits (a stopped child does
// not end a plain wait), and sleeps once the job is gone.
//
// The children: the stop is the job's alone, so the counter's last `sleep 0.02` goes on and
// exits (a zombie its stopped parent does not reap). On a loaded machine it was still asleep when
// the checkpoint came (2026-12-04, ptrace), was restored asleep, and ended before the test
// compared the restored tree with the manifest (Z, want S). Waiting for it makes the tree the
// test checkpoints one that stays as it is.
const stoppedScript = `
@JOB@ &
job=$!
until [ -s out ] && [ "$(wc -l < out)" -ge 3 ]; do sleep 0.02; done
kill -@SIG@ $job
until grep -q '^State:.*T' /proc/$job/status; do sleep 0.02; done
live_child() {
	for f in /proc/[0-9]*/stat; do
		read -r s < $f 2>/dev/null || continue
		s=${s##*) }
		set -- $s
		[ "$2" = "$job" ] && [ "$1" != Z ] && return 0
	done
	return 1
}
while live_child; do sleep 0.02; done
echo $job > stopped.pid
echo ready
wait
exec sleep 100000
`

// counterJob appends 1, 2, 3, ... to out.
const counterJob = `sh -c 'i=0; while :; do i=$((i+1)); echo $i >> out; sleep 0.02; done'`

// startStopped starts stoppedScript with job and sig in a container and returns it with the
// stopped job's pid.
func startStopped(t *testing.T, p, sig, job string) (*harness.Container, int32) {
	t.Helper()
	a := startTree(t, p, strings.NewReplacer("@SIG@", sig, "@JOB@", job).Replace(stoppedScript))
	b, err := os.ReadFile(filepath.Join(a.Dir, "stopped.pid"))
	if err != nil {
		t.Fatal(err)
	}
	var pid int32
	if _, err := fmt.Sscan(string(b), &pid); err != nil {
		t.Fatalf("stopped.pid: %q: %v", b, err)
	}
	return a, pid
}

// procState returns the state letter of pid in c's /proc/PID/stat.
func procState(t *testing.T, c *harness.Container, pid int32) string {
	t.Helper()
	r := c.Exec(t, busybox, "sh", "-c", fmt.Sprintf(`read -r s < /proc/%d/stat && s=${s##*) } && echo ${s%%%% *}`, pid))
	return strings.TrimSpace(r.Stdout)
}

// checkStoppedInManifest fails t unless m records pid as stopped by signal sig, in a manifest of
// version 4 or later (5: CRC-32C digests).
func checkStoppedInManifest(t *testing.T, m *treefmt.Manifest, pid int32, sig int) {
	t.Helper()
	pr := m.Process(pid)
	if pr == nil || pr.Stopped == nil || pr.Stopped.Signal != sig {
		t.Fatalf("the manifest does not record pid %d as stopped by signal %d: %+v", pid, sig, pr)
	}
	if m.Version < treefmt.VersionStopped {
		t.Errorf("manifest version %d with a stopped process, want at least %d", m.Version, treefmt.VersionStopped)
	}
}

// continueAndCount sends SIGCONT to pid in c and checks that the counter goes on from where it
// stopped: out holds 1, 2, ..., with nothing lost or repeated, past n lines.
func continueAndCount(t *testing.T, c *harness.Container, dir string, pid int32, n int) {
	t.Helper()
	read := func() string { b, _ := os.ReadFile(filepath.Join(dir, "out")); return string(b) }
	c.Exec(t, busybox, "kill", "-CONT", fmt.Sprint(pid)).WantExit(t, 0)
	waitFor(t, 60*time.Second, func() bool { return strings.Count(read(), "\n") >= n+5 })
	got := checkSequence(t, read())
	t.Logf("out: %d lines when stopped, %d after SIGCONT, in sequence", n, got)
}

// TestTreeStoppedOCI: a container whose counter job was stopped — by SIGSTOP, or by SIGTSTP as a
// shell's ^Z does — is checkpointed with `checkpoint --format=elf` (it failed with EBUSY before:
// a stopped process never ran the freeze's task work), the manifest records the stop and its
// signal, and the restore from the directory brings the job back stopped with its pid (/proc
// state T) and the tree as it was; the job has not counted since the checkpoint, and SIGCONT
// continues it exactly where it was stopped (out keeps counting 1, 2, 3, ...). `inspect` says
// which signal stopped it.
func TestTreeStoppedOCI(t *testing.T) {
	for _, sig := range []struct {
		name string
		num  int
	}{{"STOP", 19}, {"TSTP", 20}} {
		t.Run(sig.name, func(t *testing.T) {
			h.ForEachPlatform(t, func(t *testing.T, p string) {
				a, pid := startStopped(t, p, sig.name, counterJob)
				dir, m := checkpointTreeAndDelete(t, a)
				checkStoppedInManifest(t, m, pid, sig.num)
				n := checkSequence(t, readOut(t, a))
				out, err := exec.Command(h.Bin, "inspect", dir).CombinedOutput()
				if want := "stopped by SIG" + sig.name; err != nil || !strings.Contains(string(out), want) {
					t.Errorf("inspect %s (%v) does not say %q:\n%s", dir, err, want, out)
				}

				b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Cwd: a.Dir, Args: []string{"/nonexistent-never-run"}})
				b.MustRun(t, "restore", "--image-path", dir, "--bundle", a.Bundle, "--detach", b.ID)
				// The stop is made by the thaw before the job runs an instruction; wait until
				// the whole group stop is in place.
				waitFor(t, 30*time.Second, func() bool { return procState(t, b, pid) == "T" })
				checkRestored(t, b, m)
				if got := checkSequence(t, readOut(t, a)); got != n {
					t.Errorf("out has %d lines before SIGCONT, %d at the checkpoint: the restored job ran while stopped", got, n)
				}
				continueAndCount(t, b, a.Dir, pid, n)
			})
		})
	}
}

// TestFreezeTreeStopped: the guest tool inside the sandbox, `checkpt -c -t 0 -o DIR`, freezes a
// container whose job is stopped (failed with EBUSY before); the manifest records the stop, the
// job is still stopped after the freeze (the freeze held it and let it go back to its stop), and
// SIGCONT continues it where it was.
func TestFreezeTreeStopped(t *testing.T) {
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a, pid := startStopped(t, p, "STOP", counterJob)
		dir := filepath.Join(a.Dir, "tree")
		a.Exec(t, h.Bin, "checkpt", "-c", "-t", "0", "-o", dir).WantExit(t, 0)
		m, err := treefmt.VerifyDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		checkStoppedInManifest(t, m, pid, 19)
		if st := procState(t, a, pid); st != "T" {
			t.Errorf("after the freeze pid %d is in state %q, want T (still stopped)", pid, st)
		}
		continueAndCount(t, a, a.Dir, pid, checkSequence(t, readOut(t, a)))
	})
}

// TestFreezeOtherStopped: `checkpt -c PID` of a process stopped by SIGSTOP writes its image (it
// waited for a SIGCONT before, for ever: busybox timeout ends it with 143 then) and leaves the
// process stopped; the image, thawed in a new sandbox once the original is killed, counts on from
// where the original stopped. A single image does not record the stop: the thawed process runs.
func TestFreezeOtherStopped(t *testing.T) {
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a, pid := startStopped(t, p, "STOP", counterJob)
		img := filepath.Join(a.Dir, "job.ckpt")
		a.Exec(t, busybox, "timeout", "60", h.Bin, "checkpt", "-c", fmt.Sprint(pid), "-o", img).WantExit(t, 0)
		if st := procState(t, a, pid); st != "T" {
			t.Errorf("after the freeze pid %d is in state %q, want T (still stopped)", pid, st)
		}
		n := checkSequence(t, readOut(t, a))
		a.Exec(t, busybox, "kill", "-KILL", fmt.Sprint(pid)).WantExit(t, 0)
		waitFor(t, 30*time.Second, func() bool { return procState(t, a, pid) == "" })

		b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Cwd: a.Dir, Args: []string{h.Bin, "checkpt", "-r", img}})
		b.RunDetached(t)
		waitFor(t, 60*time.Second, func() bool { return strings.Count(readOut(t, a), "\n") >= n+5 })
		t.Logf("out: %d lines at the freeze, %d after the thaw, in sequence", n, checkSequence(t, readOut(t, a)))
	})
}

// fpLog checks tree_stopped_fp's log: lines "N ok R" with N = 1, 2, 3, ... and R never
// decreasing; it returns the number of lines and the last R.
func fpLog(t *testing.T, log string) (int, int) {
	t.Helper()
	lines := strings.Split(log, "\n")
	lines = lines[:len(lines)-1] // The part after the last newline: being written.
	last := 0
	for i, l := range lines {
		var n, r int
		var word string
		if _, err := fmt.Sscanf(l, "%d %s %d", &n, &word, &r); err != nil || n != i+1 || word != "ok" || r < last {
			t.Fatalf("line %d of out is %q, want \"%d ok R\" with R >= %d (bad: a spinner's SSE sum was wrong)", i+1, l, i+1, last)
		}
		last = r
	}
	return len(lines), last
}

// TestTreeStoppedThreadsOCI: a stopped process with three threads that keep live state in SSE
// registers (tree_stopped_fp) is checkpointed with its four threads, restored stopped, and once
// continued every thread finishes its interrupted loop with the right sum: each thread's FP state
// was captured as it was stopped. On systrap only the thread that dequeued SIGSTOP had its FP state
// pulled from the platform by gVisor; the others' is pulled by the freeze (freeze_tree_stopped.go).
func TestTreeStoppedThreadsOCI(t *testing.T) {
	fp := h.BuildC(t, "tree_stopped_fp", "-pthread")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a, pid := startStopped(t, p, "STOP", fp+" out")
		dir, m := checkpointTreeAndDelete(t, a)
		checkStoppedInManifest(t, m, pid, 19)
		if n := len(m.Process(pid).TIDs); n != 4 {
			t.Fatalf("the stopped process has %d threads in the manifest, want 4", n)
		}
		n, r := fpLog(t, readOut(t, a))

		b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Cwd: a.Dir, Args: []string{"/nonexistent-never-run"}})
		b.MustRun(t, "restore", "--image-path", dir, "--bundle", a.Bundle, "--detach", b.ID)
		waitFor(t, 30*time.Second, func() bool { return procState(t, b, pid) == "T" })
		checkRestored(t, b, m)
		b.Exec(t, busybox, "kill", "-CONT", fmt.Sprint(pid)).WantExit(t, 0)
		// Every spinner has finished the loop it was stopped in, and one more.
		waitFor(t, 120*time.Second, func() bool { _, last := fpLog(t, readOut(t, a)); return last >= r+2 })
		got, last := fpLog(t, readOut(t, a))
		t.Logf("out: %d lines (fewest loops %d) when stopped, %d (%d) after SIGCONT, all sums right", n, r, got, last)
	})
}

// TestTreeStoppedRefused: the stops a restore cannot recreate are refused at once, each with a
// message in the sandbox's log that names it, and nothing is killed: a process in a ptrace stop
// (its tracer's ptrace state is not captured) and a vfork parent waiting for a child that has
// neither exec'd nor exited (the pair's shared address space is not recreated). Before, both
// failed with one message for every kind of stop ("stopped (SIGSTOP, job control or ptrace)").
func TestTreeStoppedRefused(t *testing.T) {
	guest := h.BuildC(t, "tree_stopped_refuse")
	for _, tc := range []struct{ mode, log string }{
		{"ptrace", "is in a ptrace stop: a restore cannot recreate its tracer"},
		{"vfork", "is a vfork parent waiting for pid"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			h.ForEachPlatform(t, func(t *testing.T, p string) {
				a := startTree(t, p, fmt.Sprintf("%s %s &\nuntil [ -e ready ]; do sleep 0.02; done\necho ready\nwait\n", guest, tc.mode))
				before := psTree(t, a)
				dir := filepath.Join(h.NewDir(t), "ckpt")
				r := a.Run(t, "checkpoint", "--format=elf", "--leave-running", "--image-path", dir, a.ID)
				if r.ExitCode == 0 || !strings.Contains(r.Stderr, "device or resource busy") {
					t.Fatalf("checkpoint of a container with a %s stop: want EBUSY, got:\n%s", tc.mode, r)
				}
				if log := a.DebugLogs(t); !strings.Contains(log, tc.log) {
					t.Errorf("the sandbox log does not say %q", tc.log)
				}
				if after := psTree(t, a); len(after) != len(before) {
					t.Errorf("after the refused checkpoint: %v, before: %v", after, before)
				}
			})
		})
	}
}

// TestRestoreStoppedSubtreeInSandbox: `checkpt -c -t PID -k` freezes the stopped job's subtree
// and kills it (it failed with EBUSY before); `checkpt -r -t DIR`, started in the background in
// the same sandbox, recreates it as its child (another pid: the sandbox's own processes are
// around), stopped; SIGCONT continues it where it was (out counts on).
func TestRestoreStoppedSubtreeInSandbox(t *testing.T) {
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a, pid := startStopped(t, p, "STOP", counterJob)
		dir := filepath.Join(a.Dir, "tree")
		a.Exec(t, h.Bin, "checkpt", "-c", "-t", fmt.Sprint(pid), "-o", dir, "-k").WantExit(t, 0)
		m, err := treefmt.VerifyDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		checkStoppedInManifest(t, m, pid, 19)
		waitFor(t, 30*time.Second, func() bool { return procState(t, a, pid) == "" })
		n := checkSequence(t, readOut(t, a))

		a.Exec(t, busybox, "sh", "-c", fmt.Sprintf("%s checkpt -r -t %s > restore.log 2>&1 &", h.Bin, dir)).WantExit(t, 0)
		var restored string
		waitFor(t, 30*time.Second, func() bool {
			for id, st := range psTree(t, a) {
				if f := strings.Fields(st); len(f) == 5 && f[3] == "T" && f[4] == "sh" {
					restored = id
					return true
				}
			}
			return false
		})
		if got := checkSequence(t, readOut(t, a)); got != n {
			t.Errorf("out has %d lines before SIGCONT, %d at the checkpoint: the restored job ran while stopped", got, n)
		}
		var rpid int32
		fmt.Sscan(restored, &rpid)
		continueAndCount(t, a, a.Dir, rpid, n)
	})
}

// TestTreeStoppedParentWaits: what the parent of a restored stopped process sees
// (docs/tree-format.md, "stopped"). The parent (tree_stopped_wait) had collected the child's stop
// with waitpid(WUNTRACED) before the checkpoint and waits again; after the restore the same waitpid
// reports the stop once more (the restore's stop is a new one), and after SIGCONT it reports
// "continued": the child is a real stopped child of its restored parent.
func TestTreeStoppedParentWaits(t *testing.T) {
	guest := h.BuildC(t, "tree_stopped_wait")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := startTree(t, p, fmt.Sprintf("%s wlog &\nuntil grep -q '^stopped' wlog 2>/dev/null; do sleep 0.02; done\necho ready\nwait\n", guest))
		wlog := filepath.Join(a.Dir, "wlog")
		read := func() string { b, _ := os.ReadFile(wlog); return string(b) }
		var child int32
		if _, err := fmt.Sscanf(read(), "child %d\nstopped 19\n", &child); err != nil {
			t.Fatalf("wlog before the checkpoint: %q (%v)", read(), err)
		}
		dir, m := checkpointTreeAndDelete(t, a)
		checkStoppedInManifest(t, m, child, 19)

		b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Cwd: a.Dir, Args: []string{"/nonexistent-never-run"}})
		b.MustRun(t, "restore", "--image-path", dir, "--bundle", a.Bundle, "--detach", b.ID)
		want := fmt.Sprintf("child %d\nstopped 19\nstopped 19\n", child)
		waitFor(t, 30*time.Second, func() bool { return read() == want })
		if st := procState(t, b, child); st != "T" {
			t.Errorf("pid %d is in state %q after the restore, want T", child, st)
		}
		b.Exec(t, busybox, "kill", "-CONT", fmt.Sprint(child)).WantExit(t, 0)
		want += "continued\n"
		waitFor(t, 30*time.Second, func() bool { return read() == want })
	})
}

// TestTreeFreezeRetriesVfork: a freeze that finds a vfork parent waiting for its child (shells and
// posix_spawn vfork for every command) lets everything go and tries again until the child has
// exec'd or exited, instead of failing with EBUSY: a container checkpoint started while the
// child waits (it exits 1.5 s after it is ready) succeeds. Before, it failed with EBUSY after
// 200 ms (TestTreeFreezeStuckDoesNotHoldSandbox's forker hit that window once in CI). A
// checkpoint that came too late for the window (the log has no retry) is tried again on a new
// container, up to three times; it must succeed every time.
func TestTreeFreezeRetriesVfork(t *testing.T) {
	guest := h.BuildC(t, "tree_stopped_refuse")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		for try := 1; ; try++ {
			a := startTree(t, p, fmt.Sprintf("%s vforkexit &\nuntil [ -e ready ]; do sleep 0.02; done\necho ready\nwait\n", guest))
			dir := filepath.Join(h.NewDir(t), "ckpt")
			a.MustRun(t, "checkpoint", "--format=elf", "--leave-running", "--image-path", dir, a.ID)
			if _, err := treefmt.VerifyDir(dir); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(a.DebugLogs(t), "released everything, trying again") {
				return
			}
			if try == 3 {
				t.Fatalf("three checkpoints came after the vfork child had exited: the retry was never exercised")
			}
			t.Logf("try %d: the checkpoint came after the vfork child had exited; again", try)
		}
	})
}
