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
		state := "S"
		if pr.Zombie != nil {
			state = "Z"
		}
		want := fmt.Sprintf("%d %d %d %s %s", pr.PPID, pr.PGID, pr.SID, state, pr.Comm)
		if got := after[fmt.Sprint(pr.PID)]; got != want {
			t.Errorf("pid %d: restored as %q, want %q", pr.PID, got, want)
		}
	}
	if len(after) != len(m.Processes) {
		t.Errorf("restored %d processes, the checkpoint has %d: %v", len(after), len(m.Processes), after)
	}
	return after
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
	}{
		{"truncated image", "bytes, the manifest says", func(d string) {
			os.Truncate(filepath.Join(d, filepath.Base(img)), 4096)
		}},
		{"tampered image", "SHA-256", func(d string) {
			f, _ := os.OpenFile(filepath.Join(d, filepath.Base(img)), os.O_WRONLY, 0)
			f.WriteAt([]byte("x"), 200)
			f.Close()
		}},
		{"missing image", "no such file", func(d string) { os.Remove(filepath.Join(d, filepath.Base(img))) }},
		{"pid twice", "appears twice", func(d string) {
			b, _ := os.ReadFile(filepath.Join(d, treefmt.ManifestName))
			s := strings.Replace(string(b), fmt.Sprintf(`"pid": %d,`, m.Processes[1].PID), fmt.Sprintf(`"pid": %d,`, m.Processes[0].PID), 1)
			os.WriteFile(filepath.Join(d, treefmt.ManifestName), []byte(s), 0o600)
		}},
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
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := copyDir(t)
			tc.mutate(d)
			b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Args: []string{"/nonexistent-never-run"}})
			r := b.Run(t, "restore", "--image-path", d, "--bundle", a.Bundle, "--detach", b.ID)
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
// a consumer appending it to the file out), a background job and a zombie.
const pipelineScript = `
i=0; while :; do i=$((i+1)); echo $i; sleep 0.2; done | while read l; do echo $l >> out; done &
sleep 100000 &
sh -c 'sh -c "exit 7" & exec sleep 100000' &
echo ready
wait
`

// TestTreePipelineOCI: the pipeline container checkpointed with --format=elf, deleted and
// restored from the directory comes back with the same pids, parents and groups for every process
// that lives longer than the producer's 0.2 s sleeps, and its zombie; the pipe is recorded as a
// shared object. Producer and consumer may have ended by the time ps looks (below).
//
// What it does not check yet: that the pipeline continues. The pipe between producer and consumer
// is restored as a placeholder on each side until the kernel-objects work restores pipes (the
// producer then gets EPIPE, the consumer end-of-file); the test logs what out holds afterwards.
func TestTreePipelineOCI(t *testing.T) {
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := startTree(t, p, pipelineScript)
		waitFor(t, 10*time.Second, func() bool { return strings.Count(readOut(t, a), "\n") >= 3 })
		dir := filepath.Join(h.NewDir(t), "ckpt")
		a.MustRun(t, "checkpoint", "--format=elf", "--image-path", dir, a.ID)
		a.Wait(t)
		a.Delete(t, false)
		m, err := treefmt.VerifyDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		pipes := 0
		for _, o := range m.Objects {
			if o.Kind == "fifo" {
				pipes++
			}
		}
		if pipes == 0 {
			t.Errorf("the pipe between producer and consumer is not in the manifest's shared objects: %+v", m.Objects)
		}
		lines := strings.Count(readOut(t, a), "\n")

		b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Cwd: a.Dir, Args: []string{"/nonexistent-never-run"}})
		b.MustRun(t, "restore", "--image-path", dir, "--bundle", a.Bundle, "--detach", b.ID)
		after := psTree(t, b)
		for _, pr := range m.Processes {
			if pr.Comm == "sleep" && pr.PPID != 1 && pr.Zombie == nil && m.Process(pr.PPID).Comm != "sleep" {
				continue // A producer's 0.2 s sleep: may be over already.
			}
			state := "S"
			if pr.Zombie != nil {
				state = "Z"
			}
			want := fmt.Sprintf("%d %d %d %s %s", pr.PPID, pr.PGID, pr.SID, state, pr.Comm)
			onPipe := false
			for _, fd := range pr.FDs {
				onPipe = onPipe || fd.Kind == "fifo"
			}
			// A process on the pipe may have ended already — reaped, or a zombie its parent has not
			// reaped yet: its end is a placeholder (EOF, EPIPE) until pipes between processes
			// are restored (issue 9).
			got := after[fmt.Sprint(pr.PID)]
			ended := got == "" || got == fmt.Sprintf("%d %d %d Z %s", pr.PPID, pr.PGID, pr.SID, pr.Comm)
			if got != want && !(onPipe && ended) {
				t.Errorf("pid %d: restored as %q, want %q", pr.PID, got, want)
			}
		}
		time.Sleep(time.Second)
		t.Logf("out had %d lines at the checkpoint, %d a second after the restore (the pipe waits for the kernel-objects work)", lines, strings.Count(readOut(t, a), "\n"))
	})
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
