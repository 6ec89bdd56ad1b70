package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// objMapSharedWant are the checks test/guests/obj_mapshared.c prints after a thaw.
var objMapSharedWant = []string{"map_data=1", "map_to_file=1", "file_to_map=1", "ro_data=1", "ro_follows=1", "fails=0"}

// TestObjMapSharedFile: a MAP_SHARED mapping of a named file (read-write, its fd closed; and a
// read-only one) comes back shared with the file, in a new and in the same sandbox, on a host
// directory and in the sandbox's overlay: writes through the mapping reach the file and writes to
// the file show in the mapping, as DragonFly's thaw maps a vnode again. They used to come back as
// private copies of the frozen bytes (docs/notes-thaw.md).
func TestObjMapSharedFile(t *testing.T) {
	guest := h.BuildC(t, "obj_mapshared")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		dir := h.NewDir(t)
		img, file, ro := filepath.Join(dir, "ms.ckpt"), filepath.Join(dir, "shared.dat"), filepath.Join(dir, "ro.dat")
		if err := os.WriteFile(ro, []byte("ro:"+strings.Repeat("x", 100)), 0o644); err != nil {
			t.Fatal(err)
		}
		check := func(t *testing.T, r *harness.Result) {
			t.Helper()
			r.WantExit(t, 0)
			for _, w := range objMapSharedWant {
				if !strings.Contains(r.Stdout, w+"\n") {
					t.Errorf("want %q:\n%s", w, r)
				}
			}
		}
		t.Run("new-sandbox", func(t *testing.T) {
			frozenGuest(t, p, "r=0 errno=0", guest, img, file, ro)
			// The freeze flushed the mapping's bytes to the host file.
			if b, err := os.ReadFile(file); err != nil || !strings.HasPrefix(string(b), "before") {
				t.Fatalf("the host file lacks the mapping's bytes after the freeze: %q %v", b, err)
			}
			check(t, checkpt(t, p, "-r", img))
			b, err := os.ReadFile(file)
			if err != nil || string(b[100:105]) != "after" || string(b[200:205]) != "third" {
				t.Errorf("the host file after the thaw: %q %v", b[:210], err)
			}
		})
		t.Run("same-sandbox", func(t *testing.T) {
			if err := os.WriteFile(ro, []byte("ro:"+strings.Repeat("x", 100)), 0o644); err != nil {
				t.Fatal(err)
			}
			img2 := filepath.Join(dir, "ms2.ckpt")
			r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c",
				guest+" "+img2+" "+file+" "+ro+"; "+h.Bin+" checkpt -r "+img2)
			if !strings.Contains(r.Stdout, "r=0 errno=0") {
				t.Fatalf("the freeze did not print r=0:\n%s", r)
			}
			check(t, r)
		})
		t.Run("same-sandbox-overlay", func(t *testing.T) {
			r := h.Do(t, harness.Opts{Platform: p}, "/bin/sh", "-c",
				"echo ro:xyz > /tmp/ro.dat && "+guest+" /tmp/ms.ckpt /tmp/shared.dat /tmp/ro.dat; "+h.Bin+" checkpt -r /tmp/ms.ckpt")
			if !strings.Contains(r.Stdout, "r=0 errno=0") {
				t.Fatalf("the freeze did not print r=0:\n%s", r)
			}
			check(t, r)
		})
	})
}
