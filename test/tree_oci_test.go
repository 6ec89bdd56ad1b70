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

// checkRestored compares the processes of container c with the manifest m: every process with its
// pid, parent, group, session, state and name. It returns the processes as psTree lists them.
func checkRestored(t *testing.T, c *harness.Container, m *treefmt.Manifest) map[string]string {
	t.Helper()
	after := psTree(t, c)
	for _, pr := range m.Processes {
		checkRestoredProcess(t, after, pr)
	}
	if len(after) != len(m.Processes) {
		t.Errorf("restored %d processes, the checkpoint has %d: %v", len(after), len(m.Processes), after)
	}
	return after
}

// checkRestoredProcess compares the process pr of a manifest with what psTree listed (after).
func checkRestoredProcess(t *testing.T, after map[string]string, pr treefmt.Process) {
	t.Helper()
	state := "S"
	switch {
	case pr.Zombie != nil:
		state = "Z"
	case pr.Stopped != nil:
		state = "T"
	}
	want := fmt.Sprintf("%d %d %d %s %s", pr.PPID, pr.PGID, pr.SID, state, pr.Comm)
	if got := after[fmt.Sprint(pr.PID)]; got != want {
		t.Errorf("pid %d: restored as %q, want %q", pr.PID, got, want)
	}
}

// TestTreeCheckpointOCI: the OCI commands. `checkpoint --format=elf --leave-running` writes a tree
// checkpoint of every process of a running busybox container and leaves it running; `restore
// --image-path DIR --bundle B --detach` recognises the directory and brings the tree back with the
// same pids in a second sandbox alongside the original; `checkpoint --format=elf` without
// --leave-running stops the original (its init is killed) after writing; a restore of that second
// checkpoint works too (via the global --ckpt-format flag and a stream through stdout/stdin is left
// to the unit tests of treefmt).
func TestTreeCheckpointOCI(t *testing.T) {
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := startTree(t, p, restoreScript)
		before := psTree(t, a)
		dir := filepath.Join(h.NewDir(t), "ckpt")
		a.MustRun(t, "checkpoint", "--format=elf", "--leave-running", "--image-path", dir, a.ID)
		m, err := treefmt.VerifyDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if m.SpecSHA256 == "" {
			t.Error("the host command did not record the spec's hash")
		}
		if st := a.State(t); st.Status != "running" {
			t.Fatalf("original is %q after --leave-running", st.Status)
		}
		if now := psTree(t, a); fmt.Sprint(now) != fmt.Sprint(before) {
			t.Errorf("original changed: %v, was %v", now, before)
		}

		b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Args: []string{"/nonexistent-never-run"}})
		b.MustRun(t, "restore", "--image-path", dir, "--bundle", a.Bundle, "--detach", b.ID)
		checkRestored(t, b, m)
		if st := a.State(t); st.Status != "running" {
			t.Errorf("original is %q after the copy was restored", st.Status)
		}

		// Without --leave-running the original stops.
		dir2 := filepath.Join(h.NewDir(t), "ckpt")
		a.MustRun(t, "--ckpt-format=elf", "checkpoint", "--image-path", dir2, a.ID)
		if code := a.Wait(t); code != 128+9 {
			t.Errorf("original exited with %d after checkpoint, want %d", code, 128+9)
		}
		if _, err := treefmt.VerifyDir(dir2); err != nil {
			t.Fatal(err)
		}
	})
}

// TestTreeRestoreRejects: a checkpoint directory that is truncated, tampered with, lacks an image
// or names a pid twice is refused before anything runs: restore fails with a message naming the
// problem and leaves no container behind.
func TestTreeRestoreRejects(t *testing.T) {
	p := "systrap"
	a := startTree(t, p, restoreScript)
	dir := filepath.Join(h.NewDir(t), "ckpt")
	a.MustRun(t, "checkpoint", "--format=elf", "--image-path", dir, a.ID)
	m, err := treefmt.VerifyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, m.Processes[0].Image)
	copyDir := func(t *testing.T) string {
		d := filepath.Join(h.NewDir(t), "ckpt")
		os.Mkdir(d, 0o700)
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			os.WriteFile(filepath.Join(d, e.Name()), b, 0o600)
		}
		return d
	}
	for _, tc := range []struct {
		name, want string
		mutate     func(d string)
		flags      []string
	}{
		{"truncated image", "bytes, the manifest says", func(d string) {
			os.Truncate(filepath.Join(d, filepath.Base(img)), 4096)
		}, nil},
		{"tampered image", "does not match the manifest's CRC-32C digest", func(d string) {
			f, _ := os.OpenFile(filepath.Join(d, filepath.Base(img)), os.O_WRONLY, 0)
			f.WriteAt([]byte("x"), 200)
			f.Close()
		}, []string{"--verify-digests"}},
		{"missing image", "no such file", func(d string) { os.Remove(filepath.Join(d, filepath.Base(img))) }, nil},
		{"pid twice", "appears twice", func(d string) {
			b, _ := os.ReadFile(filepath.Join(d, treefmt.ManifestName))
			s := strings.Replace(string(b), fmt.Sprintf(`"pid": %d,`, m.Processes[1].PID), fmt.Sprintf(`"pid": %d,`, m.Processes[0].PID), 1)
			os.WriteFile(filepath.Join(d, treefmt.ManifestName), []byte(s), 0o600)
		}, nil},
		// Passes the host's checks; the sentry creates every process, then cannot put one into a
		// group that does not exist, kills what it created, and the restore init exits.
		{"group without leader", "restore init exited", func(d string) {
			b, _ := os.ReadFile(filepath.Join(d, treefmt.ManifestName))
			mm, _ := treefmt.DecodeManifest(strings.NewReader(string(b)))
			last := &mm.Processes[len(mm.Processes)-1]
			last.PGID = last.PID + 1000
			f, _ := os.Create(filepath.Join(d, treefmt.ManifestName))
			mm.Encode(f)
			f.Close()
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := copyDir(t)
			tc.mutate(d)
			b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Args: []string{"/nonexistent-never-run"}})
			r := b.Run(t, append(append([]string{"restore"}, tc.flags...), "--image-path", d, "--bundle", a.Bundle, "--detach", b.ID)...)
			if r.ExitCode == 0 || !strings.Contains(r.Stderr, tc.want) {
				t.Errorf("restore of a checkpoint with a %s: exit %d, stderr %q; want a failure naming %q", tc.name, r.ExitCode, lastLines(r.Stderr, 3), tc.want)
			}
			if cs := b.Containers(t); len(cs) != 0 {
				t.Errorf("containers left behind: %v", cs)
			}
		})
	}
}

// pipelineScript is the container: a pipeline (a producer writing a counter into a pipe,
// a consumer appending it to the file out), a background job %2 that the init waits for (then it
// reports the status and the jobs it still has in jobs.log), and a zombie (exit status 7) whose
// parent, job %3 (test/guests/tree_reaper.c at @REAPER@: busybox sh reaps on SIGCHLD, so it
// cannot hold a zombie), reaps it on SIGUSR1 and reports the status in zombie.log.
const pipelineScript = `
i=0; while :; do i=$((i+1)); echo $i; sleep 0.2; done | while read l; do echo $l >> out; done &
sleep 100000 &
@REAPER@ zombie.log &
echo ready
wait %2
echo "job2 $?" >> jobs.log
jobs >> jobs.log
wait
`

// checkSequence checks that out holds the lines 1, 2, ..., n (a partial last line aside) and
// returns n: the pipeline lost or duplicated nothing.
func checkSequence(t *testing.T, out string) int {
	t.Helper()
	lines := strings.Split(out, "\n")
	lines = lines[:len(lines)-1] // The part after the last newline: being written.
	for i, l := range lines {
		if l != fmt.Sprint(i+1) {
			t.Fatalf("line %d of out is %q, want %d: the pipeline lost or duplicated data (around it: %q)", i+1, l, i+1, lines[max(0, i-3):min(len(lines), i+4)])
		}
	}
	return len(lines)
}

// TestTreePipelineOCI: the pipeline container checkpointed with --format=elf, deleted and
// restored from the directory comes back with the same pids, parents, groups and sessions (ps
// inside), and:
//   - the pipeline continues with nothing lost or duplicated: the producer's counter goes through
//     the pipe restored once with its unread bytes (the pipe is one shared object of the
//     manifest), and out keeps counting 1, 2, 3, ... past the checkpoint;
//   - the zombie is still a zombie, and its parent reaps it with its status (7) once the test
//     tells it to (SIGUSR1);
//   - the shell's job control still works: the init, in `wait %2`, gets the status of job %2
//     when the test kills its sleep, and `jobs` still lists the pipeline and the zombie's job.
func TestTreePipelineOCI(t *testing.T) {
	reaper := h.BuildC(t, "tree_reaper")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := startTree(t, p, strings.ReplaceAll(pipelineScript, "@REAPER@", reaper))
		waitFor(t, 10*time.Second, func() bool { return strings.Count(readOut(t, a), "\n") >= 3 })
		dir, m := checkpointTreeAndDelete(t, a)
		var pipe *treefmt.Object
		for i, o := range m.Objects {
			if o.Kind == "fifo" {
				pipe = &m.Objects[i]
			}
		}
		if pipe == nil {
			t.Fatalf("the pipe between producer and consumer is not in the manifest's shared objects: %+v", m.Objects)
		}
		var zombie, reaperProc, job2 *treefmt.Process
		for i, pr := range m.Processes {
			switch {
			case pr.Zombie != nil && pr.Zombie.Code == 7:
				zombie = &m.Processes[i]
			case pr.PPID == 1 && pr.Comm == "sleep":
				job2 = &m.Processes[i]
			}
		}
		if zombie != nil {
			reaperProc = m.Process(zombie.PPID)
		}
		if zombie == nil || reaperProc == nil || job2 == nil {
			var ps []string
			for _, pr := range m.Processes {
				ps = append(ps, fmt.Sprintf("%d(ppid %d %s zombie %v)", pr.PID, pr.PPID, pr.Comm, pr.Zombie))
			}
			t.Fatalf("the checkpoint lacks the zombie with status 7 or job %%2's sleep: %s", strings.Join(ps, " "))
		}
		before := checkSequence(t, readOut(t, a))

		b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Cwd: a.Dir, Args: []string{"/nonexistent-never-run"}})
		b.MustRun(t, "restore", "--image-path", dir, "--bundle", a.Bundle, "--detach", b.ID)
		after := psTree(t, b)
		for _, pr := range m.Processes {
			transient := pr.Zombie != nil && pr.Zombie.Code == 0 && pr.Zombie.Signal == 0 && pr.Comm == "sleep"
			if pr.PPID > 1 && (pr.Zombie == nil || transient) {
				// A producer's 0.2 s sleep (the only live process whose parent is not the
				// init): may be over already, and may have been caught between fork and exec,
				// or exited and not yet reaped (restored a zombie, its parent reaps it at once).
				continue
			}
			checkRestoredProcess(t, after, pr)
		}

		checkPipelineRestored(t, a, b, before, fmt.Sprint(reaperProc.PID), fmt.Sprint(zombie.PID), fmt.Sprint(job2.PID))
	})
}

// checkPipelineRestored checks the pipeline container a restored as b (pipelineScript), whose out
// had lines lines at the checkpoint: the pipeline goes on in sequence; the reaper (pid reaper)
// reaps its zombie (pid zombie) with status 7 when told; the init's `wait %2` returns when the
// test kills job %2's sleep (pid job2) and `jobs` still lists jobs %1 and %3.
func checkPipelineRestored(t *testing.T, a, b *harness.Container, lines int, reaper, zombie, job2 string) {
	t.Helper()
	// The pipeline goes on where it stopped.
	waitFor(t, 60*time.Second, func() bool { return strings.Count(readOut(t, a), "\n") >= lines+5 })
	n := checkSequence(t, readOut(t, a))
	t.Logf("out: %d lines at the checkpoint, %d after the restore, in sequence", lines, n)

	// The zombie's parent reaps it with its status.
	b.Exec(t, busybox, "kill", "-USR1", reaper).WantExit(t, 0)
	zlog := filepath.Join(a.Dir, "zombie.log")
	waitFor(t, 30*time.Second, func() bool { b, _ := os.ReadFile(zlog); return strings.Contains(string(b), "\n") })
	if got, _ := os.ReadFile(zlog); string(got) != fmt.Sprintf("zombie %s 7\n", zombie) {
		t.Errorf("zombie.log: %q, want the zombie pid %s reaped with status 7", got, zombie)
	}

	// Job control: the init's `wait %2` returns job %2's status; the other jobs are still known.
	b.Exec(t, busybox, "kill", job2).WantExit(t, 0)
	jlog := filepath.Join(a.Dir, "jobs.log")
	// Four lines: the status, then `jobs` lists the three jobs, each in a write of its own
	// ([1] last: reading after three lines missed it once).
	waitFor(t, 30*time.Second, func() bool { b, _ := os.ReadFile(jlog); return strings.Count(string(b), "\n") >= 4 })
	got, _ := os.ReadFile(jlog)
	running := map[string]bool{}
	for _, l := range strings.Split(string(got), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[1] == "Running" {
			running[strings.TrimRight(f[0], "+-")] = true
		}
	}
	if !strings.HasPrefix(string(got), "job2 143\n") || !running["[1]"] || !running["[3]"] {
		t.Errorf("jobs.log: %q, want job %%2 ended by SIGTERM (143) and jobs %%1 and %%3 running", got)
	}
}

// TestTreeStreamOCI: `checkpoint --format=elf --image-path -` writes the tree stream to stdout
// (here: into a file), and `restore --image-path -` reads it from stdin and restores the tree with
// its pids in a new sandbox, as an ssh pipeline would.
func TestTreeStreamOCI(t *testing.T) {
	p := "systrap"
	a := startTree(t, p, restoreScript)
	r := a.MustRun(t, "checkpoint", "--format=elf", "--image-path", "-", a.ID)
	a.Wait(t)
	stream := filepath.Join(h.NewDir(t), "stream")
	if err := os.WriteFile(stream, []byte(r.Stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(h.NewDir(t), "ckpt")
	f, _ := os.Open(stream)
	err := treefmt.SplitStream(f, dir)
	f.Close()
	if err != nil {
		t.Fatalf("checkpoint's stdout is not a complete tree stream: %v", err)
	}
	m, err := treefmt.VerifyDir(dir)
	if err != nil {
		t.Fatal(err)
	}

	b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Args: []string{"/nonexistent-never-run"}})
	in, _ := os.Open(stream)
	defer in.Close()
	cmd := exec.Command(h.Bin, "--root="+b.Root, "--debug", "--debug-log="+b.LogDir+"/", "--platform="+p, "--network=none", "--overlay2=none",
		"restore", "--image-path", "-", "--bundle", a.Bundle, "--detach", b.ID)
	cmd.Stdin = in
	// Files, not pipes: the restored container keeps the command's stdout and stderr.
	out, err := os.Create(filepath.Join(b.LogDir, "restore.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		o, _ := os.ReadFile(out.Name())
		t.Fatalf("restore --image-path - < stream: %v\n%s", err, lastLines(string(o), 5))
	}
	checkRestored(t, b, m)
}
