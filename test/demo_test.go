package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemo runs demo/demo.sh, the README's first command, against the binary under test: the
// counter freezes itself at 5 in one sandbox and the image is thawed in a new one, on each
// platform.
func TestDemo(t *testing.T) {
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		dir := h.NewDir(t)
		state := filepath.Join(dir, ".root")
		cmd := exec.Command(filepath.Join(h.Root, "demo", "demo.sh"))
		cmd.Env = append(os.Environ(), "RUNSC_CKPT="+h.Bin, "DEMO_DIR="+dir, "DEMO_STATE="+state, "PLATFORM="+p)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("demo.sh: %v\n%s", err, out)
		}
		for _, want := range []string{
			"counter: froze into counter.ckpt at i=5; counting on",
			"counter: killed at i=7 (SIGKILL)",
			"Type:                              CORE (Core file)",
			"process:  counter",
			"counter: thawed from counter.ckpt (sys_checkpoint returned 1)",
			"counter: i=6 total=21",
			"counter: done, total=55",
		} {
			if !strings.Contains(string(out), want) {
				t.Errorf("demo output lacks %q:\n%s", want, out)
			}
		}
	})
}
