package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// TestObjInotify: an inotify fd comes back with its watches — same watch descriptors (a gap
// kept, numbering continuing after the last one), masks and flags (IN_ONLYDIR), each re-added by
// its path — and its status flags, with its queued events (names, a rename's cookie) in order; a
// watch whose file was removed before the thaw is not restored (its descriptor stays unused)
// (docs/notes-thaw.md, "inotify"). The guest checks each watch by causing its event. New and same
// sandbox.
func TestObjInotify(t *testing.T) {
	guest := h.BuildC(t, "obj_inotify")
	const want = "inotify queue=1 create=1 modify=1 delete=1 gap=1 gone=1 same=1 next=1 flags=1\n"
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		t.Run("new_sandbox", func(t *testing.T) {
			dir := h.NewDir(t)
			img := filepath.Join(dir, "inotify.ckpt")
			frozenGuest(t, p, "r=0 errno=0", guest, img, dir)
			out := runTool(t, h.Bin, "inspect", img)
			for _, w := range []string{"inotify", "4 watches, last wd 5", "[wd 4 mask 0x1000200 " + dir + "/sub]", "5 queued events: [wd 1 mask 0x100 cookie 0 \"before\"]", "[wd 3 mask 0x2 cookie 0 \"\"]"} {
				if !strings.Contains(out, w) {
					t.Errorf("inspect lacks %q:\n%s", w, out)
				}
			}
			if err := os.Remove(filepath.Join(dir, "g")); err != nil {
				t.Fatal(err)
			}
			r := checkpt(t, p, "-r", img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, "r=1 errno=0\n"+want) {
				t.Errorf("thawed guest: want %q:\n%s", want, r)
			}
		})
		t.Run("same_sandbox", func(t *testing.T) {
			dir := h.NewDir(t)
			img := filepath.Join(dir, "inotify.ckpt")
			r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c", guest+" "+img+" "+dir+"; rm "+dir+"/g; exec "+h.Bin+" checkpt -r "+img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, "r=1 errno=0\n"+want) {
				t.Errorf("want a thawed guest printing %q:\n%s", want, r)
			}
		})
	})
}
