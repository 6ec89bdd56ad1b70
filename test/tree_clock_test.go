package test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// clockLog returns the CLOCK_MONOTONIC readings (ns) that tree_clock has written to path, complete
// lines only.
func clockLog(t *testing.T, path string) []int64 {
	t.Helper()
	b, _ := os.ReadFile(path)
	lines := strings.Split(string(b), "\n")
	var out []int64
	for _, l := range lines[:len(lines)-1] {
		v, err := strconv.ParseInt(l, 10, 64)
		if err != nil {
			t.Fatalf("%s: line %q: %v", path, l, err)
		}
		out = append(out, v)
	}
	return out
}

// TestTreeRestoreClock: a guest logging CLOCK_MONOTONIC every 100 ms for over 2 s is checkpointed
// with --format=elf, deleted and restored. The manifest records the freeze's clock; by default
// the restored guest's first reading continues from its last one (the template route,
// runsc-ckpt/tree_restore_clock.go); restored again with --restore-clock=reset, the clock starts
// over in the new sandbox (below the last reading). A bad --restore-clock exits 2 and leaves
// nothing behind.
func TestTreeRestoreClock(t *testing.T) {
	guest := h.BuildC(t, "tree_clock")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Args: []string{guest, "clock.log"}})
		log := filepath.Join(a.Dir, "clock.log")
		a.RunDetached(t)
		waitFor(t, 60*time.Second, func() bool {
			v := clockLog(t, log)
			return len(v) >= 20 && v[len(v)-1] >= 2e9
		})
		dir, m := checkpointTreeAndDelete(t, a)
		before := clockLog(t, log)
		last := before[len(before)-1]
		if m.Clock == nil {
			t.Fatal("the manifest records no clock")
		}
		if m.Clock.MonotonicNS < last {
			t.Errorf("manifest clock %d ns is before the guest's last reading %d ns", m.Clock.MonotonicNS, last)
		}

		bad := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Cwd: a.Dir, Args: []string{"/nonexistent-never-run"}})
		r := bad.Run(t, "restore", "--restore-clock=later", "--image-path", dir, "--bundle", a.Bundle, "--detach", bad.ID)
		r.WantExit(t, 2)
		if !strings.Contains(r.Stderr, `"later"`) {
			t.Errorf("a bad --restore-clock: stderr %q does not name the value", r.Stderr)
		}
		if got := clockLog(t, log); len(got) != len(before) {
			t.Fatalf("a refused restore ran the guest: %d lines, had %d", len(got), len(before))
		}

		b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Cwd: a.Dir, Args: []string{"/nonexistent-never-run"}})
		start := time.Now()
		b.MustRun(t, "restore", "--image-path", dir, "--bundle", a.Bundle, "--detach", b.ID)
		restoreTook := time.Since(start)
		waitFor(t, 60*time.Second, func() bool { return len(clockLog(t, log)) >= len(before)+3 })
		after := clockLog(t, log)
		first := after[len(before)]
		t.Logf("%s: last reading before %.3f s, first after the restore %.3f s (restore took %v)", p, float64(last)/1e9, float64(first)/1e9, restoreTook)
		if first < last {
			t.Errorf("CLOCK_MONOTONIC went back across the restore: %d ns, then %d ns", last, first)
		}

		// Again, with the clock reset: the new sandbox's clock starts near 0.
		// (Not checkpointTreeAndDelete: the harness has no waiter on a restored container.)
		dir2 := filepath.Join(h.NewDir(t), "ckpt")
		b.MustRun(t, "checkpoint", "--format=elf", "--image-path", dir2, b.ID)
		b.Delete(t, true)
		m2, err := treefmt.VerifyDir(dir2)
		if err != nil {
			t.Fatal(err)
		}
		before2 := clockLog(t, log)
		last2 := before2[len(before2)-1]
		if m2.Clock == nil || m2.Clock.MonotonicNS < last2 {
			t.Errorf("second manifest clock %+v, last reading %d", m2.Clock, last2)
		}
		c := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Cwd: a.Dir, Args: []string{"/nonexistent-never-run"}})
		c.MustRun(t, "restore", "--restore-clock=reset", "--image-path", dir2, "--bundle", a.Bundle, "--detach", c.ID)
		waitFor(t, 60*time.Second, func() bool { return len(clockLog(t, log)) >= len(before2)+3 })
		first2 := clockLog(t, log)[len(before2)]
		t.Logf("%s: reset: last reading before %.3f s, first after %.3f s", p, float64(last2)/1e9, float64(first2)/1e9)
		if first2 >= last2 {
			t.Errorf("with --restore-clock=reset CLOCK_MONOTONIC did not start over: %d ns, then %d ns", last2, first2)
		}
		c.Delete(t, true)
	})
}
