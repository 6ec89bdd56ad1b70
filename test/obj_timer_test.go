package test

import (
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
	thawNewAndSame(t, objThaw{guest: guest, img: "timer.ckpt", want: want, same: func(t *testing.T, p, img string) {
		// A thawer that already used timer ids 0 and 1: EBUSY, and it keeps running with its
		// own timers (nothing of the image was applied).
		r := h.Do(t, harness.Opts{Platform: p, Persist: true}, guest, "-thaw", img)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "thaw r=-1 errno=16 alive=1") {
			t.Errorf("want EBUSY and a live thawer:\n%s", r)
		}
	}})
}
