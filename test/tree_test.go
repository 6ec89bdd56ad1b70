package test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// busybox is the static busybox the tree tests run their shells with (Debian's busybox-static).
const busybox = "/bin/busybox"

// treeScript is the tree the tests freeze: a pipeline (a producer writing a counter into a pipe, a
// consumer appending it to out), a background job, and a zombie (a child that exited with status 7
// and is never reaped: its parent, a subshell, execs into sleep, which never waits).
const treeScript = `
i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done | while read l; do echo $l >> out; done &
sleep 100000 &
sh -c 'sh -c "exit 7" & exec sleep 100000' &
sleep 0.3
echo ready
exec sleep 100000
`

// needBusybox skips nothing: it fails the test when busybox-static is missing (make deps installs it).
func needBusybox(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(busybox); err != nil {
		t.Fatalf("%s missing: install busybox-static (make deps)", busybox)
	}
}

// startTree runs the busybox shell script in a new container (host / as rootfs, writes reaching
// the host) on platform p and waits until it prints "ready".
func startTree(t *testing.T, p, script string) *harness.Container {
	t.Helper()
	needBusybox(t)
	c := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Args: []string{busybox, "sh", "-c", script}})
	c.RunDetached(t)
	c.WaitForOutput(t, "ready")
	return c
}

// TestFreezeTree: `checkpt -c -t 0 -o DIR`, run by exec (so outside the tree), freezes every
// process of the container into DIR: one image per live process, each decodable, the zombie with
// its status and no image, the pipe between producer and consumer recorded as a shared object, the
// tree shape (parents, groups) as ps shows it; the container runs on afterwards. With -k the
// container's processes are killed once the checkpoint is written.
func TestFreezeTree(t *testing.T) {
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		c := startTree(t, p, treeScript)
		dir := filepath.Join(c.Dir, "tree")
		c.Exec(t, h.Bin, "checkpt", "-c", "-t", "0", "-o", dir).WantExit(t, 0)

		m, err := treefmt.VerifyDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var live, zombies, transient int
		for _, pr := range m.Processes {
			if pr.Zombie != nil {
				// The producer's `sleep 0.1` may have just exited, not yet reaped by its subshell:
				// a zombie of the moment, exit code 0, parent a sh (a forked busybox subshell keeps
				// the comm "busybox"). Count it apart.
				if pp := m.Process(pr.PPID); pr.Zombie.Code == 0 && pr.Zombie.Signal == 0 && pr.Comm == "sleep" && pp != nil && (pp.Comm == "sh" || pp.Comm == "busybox") {
					transient++
					continue
				}
				zombies++
				if pp := m.Process(pr.PPID); pr.Zombie.Code != 7 || pp == nil || pp.Comm != "sleep" {
					t.Errorf("zombie %+v: want exit code 7, parent a sleep", pr)
				}
				continue
			}
			live++
			f, err := os.Open(filepath.Join(dir, pr.Image))
			if err != nil {
				t.Fatal(err)
			}
			st, _ := f.Stat()
			img, err := imgfmt.Decode(f, st.Size())
			f.Close()
			if err != nil {
				t.Fatalf("pid %d: %v", pr.PID, err)
			}
			if img.Info.PID != pr.PID || img.Info.PPID != pr.PPID || img.Info.PGID != pr.PGID {
				t.Errorf("pid %d: image says pid/ppid/pgid %d/%d/%d, manifest %d/%d/%d", pr.PID,
					img.Info.PID, img.Info.PPID, img.Info.PGID, pr.PID, pr.PPID, pr.PGID)
			}
		}
		if zombies != 1 || m.Process(1) == nil || m.Process(1).Comm != "sleep" {
			t.Errorf("want pid 1 (sleep) and one zombie; manifest: %+v", m.Processes)
		}
		// sh(1) → pipeline subshells and sleep; at least: init, producer, consumer, sleep, and the
		// producer's or consumer's sleep/echo children come and go.
		if live < 4 {
			t.Errorf("%d live processes, want at least 4: %+v", live, m.Processes)
		}
		pipes := 0
		for _, o := range m.Objects {
			if o.Kind == "fifo" && len(o.FDs) >= 2 {
				pipes++
			}
		}
		if pipes == 0 {
			t.Errorf("no pipe shared between processes in %+v", m.Objects)
		}
		if m.Hostname == "" || m.RuntimeVersion == "" || m.GVisorVersion == "" {
			t.Errorf("manifest lacks hostname or versions: %+v", m)
		}
		// inspect DIR describes the whole checkpoint.
		out, err := exec.Command(h.Bin, "inspect", dir).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "<zombie: exit status 7>") || !strings.Contains(string(out), "shared objects") {
			t.Errorf("inspect %s: %v\n%s", dir, err, out)
		}
		out, err = exec.Command(h.Bin, "inspect", "--json", dir).Output()
		var js struct {
			Totals struct{ Processes, Zombies int }
		}
		if err != nil || json.Unmarshal(out, &js) != nil || js.Totals.Processes != len(m.Processes) || js.Totals.Zombies != 1+transient {
			t.Errorf("inspect --json %s: %v, totals %+v\n%s", dir, err, js.Totals, out)
		}
		// Still running: the counter goes on.
		before := strings.Count(readOut(t, c), "\n")
		waitFor(t, 10*time.Second, func() bool { return strings.Count(readOut(t, c), "\n") > before+2 })

		// -k: the processes are killed after the checkpoint; the container's init exits.
		dir2 := filepath.Join(c.Dir, "tree2")
		c.ExecEndingContainer(t, h.Bin, "checkpt", "-c", "-t", "0", "-o", dir2, "-k")
		if _, err := treefmt.VerifyDir(dir2); err != nil {
			t.Fatal(err)
		}
		if code := c.Wait(t); code != 128+9 {
			t.Errorf("init exited with %d after checkpt -k, want %d (SIGKILL)", code, 128+9)
		}
	})
}

// readOut returns the consumer's output file.
func readOut(t *testing.T, c *harness.Container) string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "out"))
	return string(b)
}

// restoreScript is a tree without pipes between processes (those wait for the kernel-objects
// work): a background job %1, a subshell with a child of its own, and a zombie (exit status 7)
// whose parent, a subshell, exec'd into sleep, which never reaps. The init waits for job %1 and
// reports its status in the file result, then waits for everything. It says ready once the tree
// has settled (three sleeps, one zombie): a checkpoint taken while a child is still between fork
// and exec (comm "exe") restores it there, and it then becomes what the test did not expect.
const restoreScript = `
sleep 100000 &
sh -c 'sleep 100000 & wait' &
sh -c 'sh -c "exit 7" & exec sleep 100000' &
until [ "$(cat /proc/[0-9]*/comm 2>/dev/null | grep -cx sleep)" = 3 ] && grep -q '^State:.*Z' /proc/[0-9]*/status 2>/dev/null; do sleep 0.05; done
echo ready
wait %1; echo "job1=$?" > result
wait
`

// psTree returns "ppid pgid sid state comm" by pid for the container's processes (state as
// liveState maps it), read from /proc by a shell exec'd into it (without that shell and other
// exec'd processes).
func psTree(t *testing.T, c *harness.Container) map[string]string {
	t.Helper()
	r := c.Exec(t, busybox, "sh", "-c", `for d in /proc/[0-9]*; do p=${d#/proc/}; [ "$p" = "$$" ] && continue; read -r s < $d/stat || continue; s=${s##*) }; set -- $s; read -r c < $d/comm; echo "$p $2 $3 $4 $1 $c"; done; true`)
	r.WantExit(t, 0)
	out := make(map[string]string)
	for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 || (f[1] == "0" && f[0] != "1") {
			continue // Processes started by exec (checkpt, an exiting earlier ps).
		}
		f[4] = liveState(f[4])
		out[f[0]] = strings.Join(f[1:], " ")
	}
	return out
}

// liveState maps a /proc/PID/stat state letter to what a test can compare: R (running) and D
// (uninterruptible wait) become S, since a live process that sleeps in a read or a wait is caught
// running now and then by whoever looks (the pipeline test met "R" where the checkpoint said "S");
// Z, T and the others stay.
func liveState(s string) string {
	if s == "R" || s == "D" {
		return "S"
	}
	return s
}

// TestRestoreTree: a tree frozen with `checkpt -c -t 0 -k` in one container is restored as a new
// container whose init is the restore init (treefmt.RestoreInit, `restore-init DIR`): every process
// comes back with its pid, parent, process group, session, state and name (the zombie still a
// zombie), the restored init carries on from its blocked open(2): it reaps the zombie and gets its
// status 7, and its job control still knows job %1 (kill %1; wait %1: 143).
func TestRestoreTree(t *testing.T) {
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := startTree(t, p, restoreScript)
		var before map[string]string
		waitFor(t, 10*time.Second, func() bool {
			before = psTree(t, a)
			return strings.Contains(strings.Join(slices.Collect(maps.Values(before)), ","), " Z ")
		})
		dir := filepath.Join(a.Dir, "tree")
		a.ExecEndingContainer(t, h.Bin, "checkpt", "-c", "-t", "0", "-o", dir, "-k")
		a.Wait(t)
		m, err := treefmt.VerifyDir(dir)
		if err != nil {
			t.Fatal(err)
		}

		init := filepath.Join(a.Dir, "restore-init")
		if err := os.WriteFile(init, treefmt.RestoreInit(), 0o755); err != nil {
			t.Fatal(err)
		}
		b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Cwd: a.Dir, Args: []string{init, dir}})
		b.RunDetached(t)
		waitThawed(t, b, m)
		after := checkRestored(t, b, m)
		for pid, was := range before {
			if after[pid] != was {
				t.Errorf("pid %s: %q before the checkpoint, %q after the restore", pid, was, after[pid])
			}
		}

		// Job control in the restored init: killing job %1 ends its `wait %1` with 128+SIGTERM.
		job1 := ""
		for _, pr := range m.Processes {
			if pr.PPID == 1 && pr.Comm == "sleep" && job1 == "" {
				job1 = fmt.Sprint(pr.PID)
			}
		}
		b.Exec(t, busybox, "kill", job1).WantExit(t, 0)
		result := filepath.Join(a.Dir, "result")
		waitFor(t, 20*time.Second, func() bool {
			r, _ := os.ReadFile(result)
			return len(r) > 0
		})
		if r, _ := os.ReadFile(result); string(r) != "job1=143\n" {
			t.Errorf("the restored init reported %q, want job1=143", r)
		}
		// The zombie is reapable: once its parent is gone it is the init's, which reaps it.
		var zombie, zparent string
		for _, pr := range m.Processes {
			if pr.Zombie != nil {
				zombie, zparent = fmt.Sprint(pr.PID), fmt.Sprint(pr.PPID)
			}
		}
		b.Exec(t, busybox, "kill", zparent).WantExit(t, 0)
		waitFor(t, 20*time.Second, func() bool {
			ps := psTree(t, b)
			_, z := ps[zombie]
			_, zp := ps[zparent]
			return !z && !zp
		})
	})
}

// sharedFileScript: the init opens the file shared (fd 3, not O_APPEND), writes "a", and passes fd 3
// to a child shell: one open file description, one offset. USR1 makes the init write "b", USR2 the
// child write "c".
const sharedFileScript = `
exec 3>shared
echo a >&3
trap 'echo b >&3' USR1
sh -c 'trap "echo c >&3" USR2; sleep 100000 & while :; do wait; done' &
echo ready
while :; do wait; done
`

// TestRestoreTreeSharedFile: an open file description shared by two processes is restored as one:
// after the restore the init writes "b" and then the child "c" through their fd 3, and the file
// reads "a b c" (two separately reopened files would both write at offset 2: "a c").
func TestRestoreTreeSharedFile(t *testing.T) {
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := startTree(t, p, sharedFileScript)
		dir := filepath.Join(a.Dir, "tree")
		a.ExecEndingContainer(t, h.Bin, "checkpt", "-c", "-t", "0", "-o", dir, "-k")
		a.Wait(t)
		m, err := treefmt.VerifyDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		child := int32(0)
		for _, pr := range m.Processes {
			if pr.PPID == 1 && pr.Comm == "sh" {
				child = pr.PID
			}
		}
		if child == 0 || len(m.Files) == 0 {
			t.Fatalf("no child shell or no shared file in the manifest: %+v %+v", m.Processes, m.Files)
		}

		init := filepath.Join(a.Dir, "restore-init")
		if err := os.WriteFile(init, treefmt.RestoreInit(), 0o755); err != nil {
			t.Fatal(err)
		}
		b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Cwd: a.Dir, Args: []string{init, dir}})
		b.RunDetached(t)
		waitThawed(t, b, m)
		shared := filepath.Join(a.Dir, "shared")
		b.Exec(t, busybox, "kill", "-USR1", "1").WantExit(t, 0)
		waitFor(t, 10*time.Second, func() bool { s, _ := os.ReadFile(shared); return strings.Contains(string(s), "b") })
		b.Exec(t, busybox, "kill", "-USR2", fmt.Sprint(child)).WantExit(t, 0)
		waitFor(t, 10*time.Second, func() bool { s, _ := os.ReadFile(shared); return strings.Contains(string(s), "c") })
		if s, _ := os.ReadFile(shared); string(s) != "a\nb\nc\n" {
			t.Errorf("shared file reads %q after the restore, want %q (one offset for both processes)", s, "a\nb\nc\n")
		}
	})
}

// TestRestoreSubtreeInSandbox: `checkpt -c -t PID -k` freezes one subtree (a shell that sleeps 3 s
// and exits 3, and its sleep) and kills it; `checkpt -r -t DIR` in the same sandbox recreates it
// as children of checkpt (other pids: the sandbox's own processes are around), the subtree carries
// on where it stopped, and checkpt exits with the restored root's status.
func TestRestoreSubtreeInSandbox(t *testing.T) {
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := startTree(t, p, "sh -c 'sleep 3; exit 3' &\necho $! > subtree\necho ready\nwhile :; do wait; done\n")
		pid, _ := os.ReadFile(filepath.Join(a.Dir, "subtree"))
		dir := filepath.Join(a.Dir, "tree")
		a.Exec(t, h.Bin, "checkpt", "-c", "-t", strings.TrimSpace(string(pid)), "-o", dir, "-k").WantExit(t, 0)
		m, err := treefmt.VerifyDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Processes) != 2 || m.Root == 0 {
			t.Fatalf("want the subtree's shell and sleep, got %+v", m.Processes)
		}
		a.Exec(t, h.Bin, "checkpt", "-r", "-t", dir).WantExit(t, 3)
	})
}

// startGuestTree runs guest (a static program that prints "ready" once its tree is set up) with
// args as a detached container on platform p, and waits for "ready".
func startGuestTree(t *testing.T, p, guest string, args ...string) *harness.Container {
	t.Helper()
	needBusybox(t)
	c := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Args: append([]string{guest}, args...)})
	c.RunDetached(t)
	c.WaitForOutput(t, "ready")
	return c
}

// waitThawed waits (30 s at most) until every live process of m runs in container c and none is
// still named restore-init: a container started with the restore init directly (not by the host
// `restore`, which waits for it) runs before its processes have finished their thaws, and until
// then each is named restore-init and a signal sent to it is not the restored program's to take.
// It does not want each process's recorded name: a thawed process may rename itself at once
// (busybox sh runs an applet by exec'ing /proc/self/exe, "exe", which a freeze caught and which
// was "sleep" right after its thaw). It asks the sandbox (`ps`), never execs into the container:
// an exec'd process would take a pid the restore may still have to create (it failed so: "pid 2
// cannot be had").
func waitThawed(t *testing.T, c *harness.Container, m *treefmt.Manifest) {
	t.Helper()
	var out string
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		// The table of runsc's ps: UID PID PPID C TTY STIME TIME CMD, CMD the process's name.
		r := c.Run(t, "ps", c.ID)
		out = r.Stdout
		if r.ExitCode != 0 {
			continue
		}
		have := make(map[int32]string)
		for _, l := range strings.Split(r.Stdout, "\n")[1:] {
			f := strings.Fields(l)
			if len(f) < 3 {
				continue
			}
			if pid, err := strconv.Atoi(f[1]); err == nil {
				have[int32(pid)] = f[len(f)-1]
			}
		}
		thawed := true
		for _, pr := range m.Processes {
			if name, ok := have[pr.PID]; pr.Zombie == nil && (!ok || name == "restore-init" && pr.Comm != "restore-init") {
				thawed = false
			}
		}
		if thawed {
			return
		}
	}
	t.Fatalf("the restored processes did not all run under their own names within 30 s: %s; the checkpoint: %+v", out, m.Processes)
}

// checkpointTreeAndDelete checkpoints container c with `checkpoint --format=elf` (which stops it),
// waits for it, deletes it, and returns the checkpoint directory and its verified manifest.
func checkpointTreeAndDelete(t *testing.T, c *harness.Container) (string, *treefmt.Manifest) {
	t.Helper()
	dir := filepath.Join(h.NewDir(t), "ckpt")
	c.MustRun(t, "checkpoint", "--format=elf", "--image-path", dir, c.ID)
	c.Wait(t)
	c.Delete(t, false)
	m, err := treefmt.VerifyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, m
}
