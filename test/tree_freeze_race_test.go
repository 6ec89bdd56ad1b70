package test

import (
	"testing"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// TestTreeFreezeKilledWhileMemberWaits (docs/fuzzing.md, finding 4): a tree freeze whose member
// process is busy with a freeze of its own (stuck writing into a pipe nobody reads; its threads
// run on from a snapshot) makes the member's thread capture itself, and that capture waits for
// the member's own freeze to end. The tree freezer is then killed: it waited for that capture in
// a plain channel receive, so it never went, and neither did anything waiting for it (the fuzzer's
// round leader, its main process). Now it goes at once; the capture is released on its own when
// it ends, and the member runs on once its freeze fails with EPIPE.
func TestTreeFreezeKilledWhileMemberWaits(t *testing.T) {
	guest := h.BuildC(t, "tree_freeze_race", "-pthread")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		r := h.Do(t, harness.Opts{Platform: p, Persist: true, Timeout: 5 * time.Minute}, guest, "stuck")
		r.WantExit(t, 0)
		want := "stuck=1\nparked=1\nkilled_gone=1\nfreeze errno=EPIPE\nreleased=1\nok\n"
		if r.Stdout != want {
			t.Errorf("guest output:\n%s\nwant:\n%s\nstderr:\n%s", r.Stdout, want, r.Stderr)
		}
	})
}

// TestTreeFreezeRacesSelfFreeze (docs/fuzzing.md, finding 4): a process freezes itself in a loop
// while another process tree-freezes it in a loop. A thread asked, at one return to user mode, to
// stop for the process's own freeze (captured, then parked) and to capture itself for the tree
// freeze waited in the second for the first freeze to end, while that freeze waited for the
// thread to park: the process was wedged, and with it every freezer. Both loops must keep
// completing.
func TestTreeFreezeRacesSelfFreeze(t *testing.T) {
	guest := h.BuildC(t, "tree_freeze_race", "-pthread")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		r := h.Do(t, harness.Opts{Platform: p, Persist: true, Timeout: 5 * time.Minute}, guest, "loop")
		r.WantExit(t, 0)
		if want := "self=1 tree=1\nok\n"; r.Stdout != want {
			t.Errorf("guest output:\n%s\nwant:\n%s\nstderr:\n%s", r.Stdout, want, r.Stderr)
		}
	})
}
