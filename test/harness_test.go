package test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// TestHarnessTearsDown checks the harness's promise that nothing outlives a test: a detached
// container, a background `do` whose guest runs, and a `do` killed while it was still creating its
// sandbox are all gone once their subtest ends, with no process or mount left for their roots.
func TestHarnessTearsDown(t *testing.T) {
	guest := h.BuildC(t, "sleeper")
	var (
		roots []string
		pids  []int
	)
	t.Run("leave_running", func(t *testing.T) {
		c := h.Bundle(t, harness.BundleOpts{Args: []string{guest, "300"}})
		c.RunDetached(t)
		c.WaitForOutput(t, "ready ")
		roots = append(roots, c.Root)
		pids = append(pids, c.State(t).Pid)

		p := h.StartDo(t, harness.Opts{}, guest, "300")
		p.WaitForOutput(t, "ready ")
		roots = append(roots, p.Sandbox().Root)
		pids = append(pids, p.Pid())

		// Ends (killed by the harness) right after starting: mid-creation of the sandbox.
		q := h.StartDo(t, harness.Opts{}, guest, "300")
		roots = append(roots, q.Sandbox().Root)
		pids = append(pids, q.Pid())
	})
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d still exists after its test ended", pid)
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, root := range roots {
		if strings.Contains(string(mounts), " "+root) {
			t.Errorf("mounts left under %s", root)
		}
		if pids := processesWithArg(t, "--root="+root); len(pids) > 0 {
			t.Errorf("processes of %s left: %v", root, pids)
		}
	}
}

// processesWithArg returns the pids whose command line has the argument arg.
func processesWithArg(t *testing.T, arg string) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, e := range entries {
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && strings.Contains(string(cmdline), arg+"\x00") {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// TestHarnessPersist checks Opts.Persist for `do` and for bundles: with it, a file the guest
// writes in its working directory reaches the host; without it, it stays in the sandbox's
// memory overlay.
func TestHarnessPersist(t *testing.T) {
	const script = "echo persisted > out.txt && cat out.txt"
	for _, persist := range []bool{true, false} {
		t.Run("do_persist="+strconv.FormatBool(persist), func(t *testing.T) {
			r := h.Do(t, harness.Opts{Persist: persist}, "/bin/sh", "-c", script)
			r.WantExit(t, 0)
			checkPersisted(t, r.Sandbox.Dir, persist, r.Stdout)
		})
		t.Run("bundle_persist="+strconv.FormatBool(persist), func(t *testing.T) {
			c := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Persist: persist}, Args: []string{"/bin/sh", "-c", script}})
			c.RunDetached(t)
			if code := c.Wait(t); code != 0 {
				t.Fatalf("guest exit status %d; stderr:\n%s", code, c.GuestStderr())
			}
			checkPersisted(t, c.Dir, persist, c.GuestStdout())
		})
	}
}

func checkPersisted(t *testing.T, dir string, persist bool, stdout string) {
	t.Helper()
	if !strings.Contains(stdout, "persisted") {
		t.Errorf("the guest could not write its file; stdout %q", stdout)
	}
	b, err := os.ReadFile(filepath.Join(dir, "out.txt"))
	switch {
	case persist && (err != nil || string(b) != "persisted\n"):
		t.Errorf("with Persist the host should see out.txt = %q: got %q, %v", "persisted\n", b, err)
	case !persist && err == nil:
		t.Errorf("without Persist out.txt reached the host")
	}
}
