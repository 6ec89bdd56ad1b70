package test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// TestObjSysV: SysV semaphore sets (keyed and IPC_PRIVATE, with an id gap) and a message queue
// come back with their ids, keys, modes, values, msg_qbytes and queued messages in order: recreated
// in a new sandbox's IPC namespace, found alive (left as they are) in the same sandbox. A thaw
// where the queue's id is taken by another queue fails with EEXIST and leaves nothing behind (the
// semaphore sets it had created are removed again); the thawer keeps running.
func TestObjSysV(t *testing.T) {
	guest := h.BuildC(t, "obj_sysv")
	const want = "sem=1 private=1 msg=1 order=1"
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		img := filepath.Join(h.NewDir(t), "sysv.ckpt")
		t.Run("new-sandbox", func(t *testing.T) {
			r := frozenGuest(t, p, "r=0 errno=0", guest, img)
			if !strings.Contains(r.Stdout, "ids sem=1 gap=2 private=3 msg=1") {
				t.Fatalf("unexpected ids (a fresh IPC namespace starts at 1):\n%s", r)
			}
			r = checkpt(t, p, "-r", img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("want %q:\n%s", want, r)
			}
		})
		t.Run("clash", func(t *testing.T) {
			r := h.Do(t, harness.Opts{Platform: p, Persist: true}, guest, "-clash", img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, "clash q=1 thaw r=-1 errno=17 gone=1") {
				t.Errorf("want EEXIST with nothing left behind:\n%s", r)
			}
		})
		t.Run("same-sandbox", func(t *testing.T) {
			img := filepath.Join(h.NewDir(t), "sysv.ckpt")
			r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c", guest+" "+img+"; "+h.Bin+" checkpt -r "+img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, "r=0 errno=0") || !strings.Contains(r.Stdout, want) {
				t.Errorf("want r=0 then %q:\n%s", want, r)
			}
		})
	})
}
