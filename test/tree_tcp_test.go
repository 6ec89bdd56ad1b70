package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// TestTreeHalfClosedTCPOCI: a TCP connection between two processes of the container, one side
// shut down for writing (test/guests/tree_halfclose.c), checkpointed with --format=elf, deleted
// and restored. The child's image records its end "to be reset" (its peer is in another image)
// with the shut-down flag, and the restore joins the two ends into one connection again,
// half-closed: the parent reads the bytes that were queued, then end-of-file; its reply reaches
// the child; the child's own writes still fail with EPIPE.
func TestTreeHalfClosedTCPOCI(t *testing.T) {
	guest := h.BuildC(t, "tree_halfclose")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := startGuestTree(t, p, guest, "halfclose.log")
		dir, m := checkpointTreeAndDelete(t, a)
		if len(m.Processes) != 2 || m.Process(2) == nil || m.Process(2).PPID != 1 {
			t.Fatalf("the checkpoint does not hold the parent and its child: %+v", m.Processes)
		}
		// The child's end: reset (its peer is in the parent's image), shut down for writing.
		img := decodeImage(t, filepath.Join(dir, m.Process(2).Image))
		var shut int
		for _, o := range img.Objects {
			if b, ok := o.Body.(*imgfmt.InetSocketObject); ok && len(b.Ends) == 1 && b.Ends[0].State == imgfmt.InetReset && b.Ends[0].ShutWrite {
				shut++
			}
		}
		if shut != 1 {
			t.Errorf("the child's image has %d reset TCP ends shut down for writing, want 1: %+v", shut, img.Objects)
		}

		b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Cwd: a.Dir, Args: []string{"/nonexistent-never-run"}})
		b.MustRun(t, "restore", "--image-path", dir, "--bundle", a.Bundle, "--detach", b.ID)
		checkRestored(t, b, m)
		log := filepath.Join(a.Dir, "halfclose.log")
		read := func() string { b, _ := os.ReadFile(log); return string(b) }
		b.Exec(t, busybox, "kill", "-USR1", "1").WantExit(t, 0)
		waitFor(t, 30*time.Second, func() bool { return strings.Contains(read(), "parent done") })
		b.Exec(t, busybox, "kill", "-USR1", "2").WantExit(t, 0)
		waitFor(t, 30*time.Second, func() bool { return strings.Contains(read(), "child done") })
		lines := strings.Split(strings.TrimSpace(read()), "\n")
		if len(lines) != 6 {
			t.Errorf("halfclose.log has %d lines, want 6:\n%s", len(lines), read())
		}
		for _, l := range lines {
			if !strings.HasSuffix(l, " ok") {
				t.Errorf("after the restore: %q", l)
			}
		}
	})
}
