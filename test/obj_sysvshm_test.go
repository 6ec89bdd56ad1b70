package test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// TestObjSysVShm freezes a guest attaching a keyed SysV segment twice (read-write and read-only)
// and a removed private one, and thaws it: in a new sandbox both are recreated with their ids,
// key, mode, size, contents and IPC_RMID state, and the attachments share one segment (also with
// a child forked after the thaw). In the same sandbox the keyed segment, which outlived the
// process, is attached again; the removed one's id was handed out before and cannot be had again:
// the thaw fails with EEXIST and the caller keeps running.
func TestObjSysVShm(t *testing.T) {
	guest := h.BuildC(t, "obj_sysvshm")
	want := []string{"a_id=1", "a_stat=1", "a_data=1", "a_shared=1", "a_readonly=1", "a_fork=1", "fails=0"}
	check := func(t *testing.T, r *harness.Result, extra ...string) {
		t.Helper()
		r.WantExit(t, 0)
		for _, w := range append(extra, want...) {
			if !strings.Contains(r.Stdout, w+"\n") {
				t.Errorf("want %q:\n%s", w, r)
			}
		}
	}
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		dir := h.NewDir(t)
		t.Run("new-sandbox", func(t *testing.T) {
			img := filepath.Join(dir, "shm.ckpt")
			frozenGuest(t, p, "r=0 errno=0", guest, img, "5eed01")
			r := checkpt(t, p, "-r", img)
			check(t, r, "b_data=1", "b_removed=1")
			ins := h.Do(t, harness.Opts{Platform: p, Persist: true}, h.Bin, "inspect", img)
			ins.WantExit(t, 0)
			for _, w := range []string{"sysv-shm", "key 0x5eed01, id 4, mode 0640, size 12388", "removed", "object"} {
				if !strings.Contains(ins.Stdout, w) {
					t.Errorf("inspect lacks %q:\n%s", w, ins.Stdout)
				}
			}
		})
		t.Run("same-sandbox", func(t *testing.T) {
			img := filepath.Join(dir, "shm-same.ckpt")
			r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c",
				guest+" "+img+" 5eed02 noremoved; "+h.Bin+" checkpt -r "+img)
			if !strings.Contains(r.Stdout, "r=0 errno=0") {
				t.Fatalf("the freeze did not print r=0:\n%s", r)
			}
			check(t, r)
		})
		t.Run("same-sandbox-removed-id-taken", func(t *testing.T) {
			img := filepath.Join(dir, "shm-taken.ckpt")
			r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c",
				guest+" "+img+" 5eed03; "+h.Bin+" checkpt -r "+img+"; echo thaw=$?")
			if !strings.Contains(r.Stdout, "r=0 errno=0") || !strings.Contains(r.Stdout, "thaw=5\n") ||
				!strings.Contains(r.Stderr, "file exists") {
				t.Errorf("want the thaw refused with EEXIST (checkpt exit 5):\n%s", r)
			}
		})
	})
}
