package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// clockLine is one line of tree_clock's log.
type clockLine struct {
	mono1, mono2 int64   // CLOCK_MONOTONIC (ns) just before and just after uptime was read.
	uptime       float64 // /proc/uptime's first field (s).
	btime        int64   // /proc/stat's btime (s since the epoch).
	start        int64   // The process's start time (/proc/self/stat field 22, ticks since boot).
}

func (l clockLine) String() string {
	return fmt.Sprintf("monotonic %.3f-%.3f s, uptime %.2f s, btime %d, start time %.2f s", float64(l.mono1)/1e9, float64(l.mono2)/1e9, l.uptime, l.btime, float64(l.start)/100)
}

// clockLog returns the lines that tree_clock has written to path, complete lines only.
func clockLog(t *testing.T, path string) []clockLine {
	t.Helper()
	b, _ := os.ReadFile(path)
	lines := strings.Split(string(b), "\n")
	var out []clockLine
	for _, l := range lines[:len(lines)-1] {
		var c clockLine
		if n, err := fmt.Sscanf(l, "%d %g %d %d %d", &c.mono1, &c.uptime, &c.mono2, &c.btime, &c.start); n != 5 || err != nil {
			t.Fatalf("%s: line %q: %v", path, l, err)
		}
		out = append(out, c)
	}
	return out
}

// checkUptime fails t unless l's uptime is its CLOCK_MONOTONIC (within 0.5 s: the two are set
// together when a sandbox boots and both count the realtime a restore adds) and its start time is
// not after it; what names the line.
func checkUptime(t *testing.T, what string, l clockLine) {
	t.Helper()
	if l.uptime < float64(l.mono1)/1e9-0.5 || l.uptime > float64(l.mono2)/1e9+0.5 {
		t.Errorf("%s: /proc/uptime is not CLOCK_MONOTONIC: %v", what, l)
	}
	if float64(l.start)/100 > l.uptime+0.02 {
		t.Errorf("%s: the process started after now: %v", what, l)
	}
}

// TestTreeRestoreClock: a guest logging CLOCK_MONOTONIC, /proc/uptime, /proc/stat's btime and its
// own start time every 100 ms for over 2 s is checkpointed with --format=elf, deleted and
// restored. The manifest records the freeze's clock and boot time; by default the restored
// guest's first line continues from its last one (the template route,
// runsc-ckpt/tree_restore_clock.go): CLOCK_MONOTONIC and the uptime do not go back, the uptime is
// still CLOCK_MONOTONIC, btime is the original's. Restored again with --restore-clock=reset, the
// clock and the uptime start over in the new sandbox (below the last line's) and btime is the new
// sandbox's (later). A bad --restore-clock exits 2 and leaves nothing behind.
func TestTreeRestoreClock(t *testing.T) {
	guest := h.BuildC(t, "tree_clock")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Args: []string{guest, "clock.log"}})
		log := filepath.Join(a.Dir, "clock.log")
		a.RunDetached(t)
		waitFor(t, 60*time.Second, func() bool {
			v := clockLog(t, log)
			return len(v) >= 20 && v[len(v)-1].mono1 >= 2e9
		})
		dir, m := checkpointTreeAndDelete(t, a)
		before := clockLog(t, log)
		last := before[len(before)-1]
		checkUptime(t, "before the checkpoint", last)
		if m.Clock == nil {
			t.Fatal("the manifest records no clock")
		}
		if m.Clock.MonotonicNS < last.mono2 {
			t.Errorf("manifest clock %d ns is before the guest's last reading %v", m.Clock.MonotonicNS, last)
		}
		if m.Clock.BootRealtimeNS/1e9 != last.btime {
			t.Errorf("manifest boot time %d ns, the guest's btime %d", m.Clock.BootRealtimeNS, last.btime)
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
		t.Logf("%s: last line before: %v", p, last)
		t.Logf("%s: first after the restore: %v (restore took %v)", p, first, restoreTook)
		if first.mono1 < last.mono2 {
			t.Errorf("CLOCK_MONOTONIC went back across the restore: %v, then %v", last, first)
		}
		if first.uptime < last.uptime {
			t.Errorf("/proc/uptime went back across the restore: %v, then %v", last, first)
		}
		if first.btime != last.btime {
			t.Errorf("btime changed across the restore: %v, then %v", last, first)
		}
		checkUptime(t, "after the restore", first)

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
		if m2.Clock == nil || m2.Clock.MonotonicNS < last2.mono2 || m2.Clock.BootRealtimeNS != m.Clock.BootRealtimeNS {
			t.Errorf("second manifest clock %+v, last line %v; want the first's boot time %d", m2.Clock, last2, m.Clock.BootRealtimeNS)
		}
		c := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Cwd: a.Dir, Args: []string{"/nonexistent-never-run"}})
		c.MustRun(t, "restore", "--restore-clock=reset", "--image-path", dir2, "--bundle", a.Bundle, "--detach", c.ID)
		waitFor(t, 60*time.Second, func() bool { return len(clockLog(t, log)) >= len(before2)+3 })
		first2 := clockLog(t, log)[len(before2)]
		t.Logf("%s: reset: last line before: %v", p, last2)
		t.Logf("%s: reset: first after: %v", p, first2)
		if first2.mono1 >= last2.mono1 {
			t.Errorf("with --restore-clock=reset CLOCK_MONOTONIC did not start over: %v, then %v", last2, first2)
		}
		if first2.uptime >= last2.uptime {
			t.Errorf("with --restore-clock=reset /proc/uptime did not start over: %v, then %v", last2, first2)
		}
		if first2.btime <= last2.btime {
			t.Errorf("with --restore-clock=reset btime is not the new sandbox's: %v, then %v", last2, first2)
		}
		checkUptime(t, "after the reset restore", first2)
		c.Delete(t, true)
	})
}
