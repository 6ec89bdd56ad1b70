package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/treefmt"
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

// startTree runs treeScript in a new container (host / as rootfs, writes reaching the host) and
// waits until it is up.
func startTree(t *testing.T, p string) *harness.Container {
	t.Helper()
	needBusybox(t)
	c := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Args: []string{busybox, "sh", "-c", treeScript}})
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
		c := startTree(t, p)
		dir := filepath.Join(c.Dir, "tree")
		c.Exec(t, h.Bin, "checkpt", "-c", "-t", "0", "-o", dir).WantExit(t, 0)

		m, err := treefmt.VerifyDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var live, zombies int
		for _, pr := range m.Processes {
			if pr.Zombie != nil {
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
		// Still running: the counter goes on.
		before := strings.Count(readOut(t, c), "\n")
		waitFor(t, 10*time.Second, func() bool { return strings.Count(readOut(t, c), "\n") > before+2 })

		// -k: the processes are killed after the checkpoint; the container's init exits.
		dir2 := filepath.Join(c.Dir, "tree2")
		c.Exec(t, h.Bin, "checkpt", "-c", "-t", "0", "-o", dir2, "-k").WantExit(t, 0)
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

// waitFor polls cond until it holds or timeout passes (then the test fails).
func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("condition not met within %v", timeout)
}
