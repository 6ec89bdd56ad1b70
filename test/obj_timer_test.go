package test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// TestObjPosixTimer: POSIX timers come back with their ids (a deleted one stays a gap, the next
// timer_create gets the id after the highest), clocks, sigevents (SIGEV_SIGNAL with its value,
// SIGEV_THREAD_ID to a second thread whose tid changed, SIGEV_NONE), armed with the time that
// remained at the freeze and their intervals, and fire after the thaw (never early). Thawed in a
// new sandbox and in the same one.
func TestObjPosixTimer(t *testing.T) {
	guest := h.BuildC(t, "obj_timer", "-pthread")
	const want = "ids=1 t0=1 t0_again=1 t1=1 t3=1 t4=1 t5=1 next=1"
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		t.Run("new-sandbox", func(t *testing.T) {
			img := filepath.Join(h.NewDir(t), "timer.ckpt")
			frozenGuest(t, p, "r=0 errno=0", guest, img)
			r := checkpt(t, p, "-r", img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("want %q:\n%s", want, r)
			}
		})
		t.Run("same-sandbox", func(t *testing.T) {
			img := filepath.Join(h.NewDir(t), "timer.ckpt")
			r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c", guest+" "+img+"; "+h.Bin+" checkpt -r "+img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, "r=0 errno=0") || !strings.Contains(r.Stdout, want) {
				t.Errorf("want r=0 then %q:\n%s", want, r)
			}
			// A thawer that already used timer ids 0 and 1: EBUSY, and it keeps running with its
			// own timers (nothing of the image was applied).
			r = h.Do(t, harness.Opts{Platform: p, Persist: true}, guest, "-thaw", img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, "thaw r=-1 errno=16 alive=1") {
				t.Errorf("want EBUSY and a live thawer:\n%s", r)
			}
		})
	})
}
