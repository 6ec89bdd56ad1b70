package test

import (
	"path/filepath"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
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

		r := restoreLogged(t, p, a, dir, m, "halfclose.log")
		r.kill(t, logHas("parent done"), "-USR1", "1")
		r.kill(t, logHas("child done"), "-USR1", "2")
		r.checkLines(t, 6)
	})
}
