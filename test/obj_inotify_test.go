package test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// TestObjInotify: an inotify fd comes back as a fresh inotify instance with its flags, without its
// watches and queued events (docs/notes-thaw.md, "inotify": gVisor offers no safe way to read
// them); the program can add watches again and gets their events. New and same sandbox.
func TestObjInotify(t *testing.T) {
	guest := h.BuildC(t, "obj_inotify")
	const want = "inotify=1 fresh=1 works=1 flags=1\n"
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		t.Run("new_sandbox", func(t *testing.T) {
			dir := h.NewDir(t)
			img := filepath.Join(dir, "inotify.ckpt")
			frozenGuest(t, p, "r=0 errno=0", guest, img, dir)
			r := checkpt(t, p, "-r", img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, "r=1 errno=0\n"+want) {
				t.Errorf("thawed guest: want %q:\n%s", want, r)
			}
		})
		t.Run("same_sandbox", func(t *testing.T) {
			dir := h.NewDir(t)
			img := filepath.Join(dir, "inotify.ckpt")
			r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c", guest+" "+img+" "+dir+"; exec "+h.Bin+" checkpt -r "+img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, "r=1 errno=0\n"+want) {
				t.Errorf("want a thawed guest printing %q:\n%s", want, r)
			}
		})
	})
}
