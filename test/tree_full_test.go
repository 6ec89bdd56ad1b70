package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTreeCheckpointFullDisk: `checkpoint --format=elf` (without --leave-running) into a directory
// on a full filesystem fails with a message saying so, leaves no checkpoint files, and loses
// nothing: the container keeps running with the same processes. (The host reads the stream from
// the sentry through a pipe; when writing a file fails it closes the pipe, so the freeze fails
// instead of waiting for ever on a full pipe, and the tree is not killed.)
func TestTreeCheckpointFullDisk(t *testing.T) {
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := startTree(t, p, restoreScript)
		before := psTree(t, a)
		mnt := h.NewDir(t)
		if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=256k"); err != nil {
			t.Fatalf("mounting a small tmpfs: %v", err)
		}
		t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
		dir := filepath.Join(mnt, "ckpt")
		r := a.Run(t, "checkpoint", "--format=elf", "--image-path", dir, a.ID)
		if r.ExitCode == 0 {
			t.Fatalf("checkpoint into a 256 KiB filesystem succeeded:\n%s", r)
		}
		if !strings.Contains(r.Stderr, "no space left on device") {
			t.Errorf("checkpoint's error does not say the disk is full:\n%s", r)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Errorf("a failed checkpoint left %v in %s", names, dir)
		}
		if st := a.State(t); st.Status != "running" {
			t.Fatalf("the container is %q after a failed checkpoint", st.Status)
		}
		if now := psTree(t, a); fmt.Sprint(now) != fmt.Sprint(before) {
			t.Errorf("the container's processes changed: %v, were %v", now, before)
		}
	})
}
