package test

import (
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// TestHarnessTearsDown checks the harness's promise that nothing outlives a test: a detached
// container and a background `do` left running by a subtest are gone once the subtest ends, and
// no mount is left under their state roots.
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
		roots = append(roots, p.Sandbox().Root)
		pids = append(pids, p.Pid())
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
	}
}
