package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// Stress (issue 13 item 6), bounded for CI; bench/stress.sh runs the full 1,000 cycles and 100
// processes and prints the figures (bench/README.md). The guest measures nothing itself: the test
// reads the sentry's RSS and open host fds when the guest is ready and again when it is done, and
// both must come back near where they were (generous bounds: a leak of one fd or one image per
// cycle would exceed them many times over).

const (
	stressCycles = 150
	stressProcs  = 25
	// stressFDSlack and stressRSSSlack bound how far the sentry may stay above its baseline.
	stressFDSlack  = 16
	stressRSSSlack = 128 << 20
)

// sandboxPid returns the pid of c's sandbox (its sentry).
func sandboxPid(t *testing.T, c *harness.Container) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.LogDir, "sandbox.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("sandbox pid file: %v", err)
	}
	return pid
}

// hostFDs returns how many fds process pid has open, and how many of each kind (what they link
// to, with numbers and paths under the test's scratch directory shortened).
func hostFDs(t *testing.T, pid int) (int, map[string]int) {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("listing the sentry's fds: %v", err)
	}
	kinds := map[string]int{}
	for _, e := range ents {
		l, _ := os.Readlink(filepath.Join(dir, e.Name()))
		if i := strings.IndexAny(l, "[:"); i > 0 && !strings.HasPrefix(l, "/") {
			l = l[:i]
		}
		kinds[l]++
	}
	return len(ents), kinds
}

// sentryFigures runs hostile_stress with -sync and args in a container on platform p and returns
// the sentry's (RSS, fds) before and after, and the guest's output.
func sentryFigures(t *testing.T, p string, args ...string) (rss0, rss1 int64, fd0, fd1 int, out string) {
	t.Helper()
	guest := h.BuildC(t, "hostile_stress")
	dir := h.NewDir(t)
	c := h.Bundle(t, harness.BundleOpts{
		Opts: harness.Opts{Platform: p, Persist: true, Timeout: 4 * time.Minute},
		Args: append([]string{guest, "-sync"}, args...),
		Cwd:  dir,
	})
	c.Create(t)
	c.Start(t)
	c.WaitForOutput(t, "ready\n")
	// The first exec caches the shell's files in the sandbox: before the baseline.
	c.Exec(t, "/bin/sh", "-c", "touch "+filepath.Join(dir, "warm")).WantExit(t, 0)
	sentry := sandboxPid(t, c)
	rss0, _ = sentryMem(t, sentry)
	fd0, kinds0 := hostFDs(t, sentry)
	c.Exec(t, "/bin/sh", "-c", "touch "+filepath.Join(dir, "go")).WantExit(t, 0)
	c.WaitForOutput(t, "done\n")
	rss1, _ = sentryMem(t, sentry)
	fd1, kinds1 := hostFDs(t, sentry)
	if fd1 > fd0+stressFDSlack {
		t.Logf("sentry host fds by kind: before %v, after %v", kinds0, kinds1)
	}
	// The guest exits as soon as it sees "end", which ends the container: the exec'd touch may be
	// killed with it (137) before it reports its own exit.
	if r := c.Exec(t, "/bin/sh", "-c", "touch "+filepath.Join(dir, "end")); r.ExitCode != 0 && r.ExitCode != 128+9 {
		t.Fatalf("touch end: %s", r)
	}
	if code := c.Wait(t); code != 0 {
		t.Errorf("hostile_stress exited %d:\n%s\n%s", code, c.GuestStdout(), c.GuestStderr())
	}
	return rss0, rss1, fd0, fd1, c.GuestStdout()
}

// checkBaseline fails t if the sentry did not come back near its baseline.
func checkBaseline(t *testing.T, rss0, rss1 int64, fd0, fd1 int) {
	t.Helper()
	t.Logf("sentry: RSS %d -> %d KiB, host fds %d -> %d", rss0>>10, rss1>>10, fd0, fd1)
	if fd1 > fd0+stressFDSlack {
		t.Errorf("the sentry holds %d host fds after the stress, %d before (slack %d)", fd1, fd0, stressFDSlack)
	}
	if rss1 > rss0+stressRSSSlack {
		t.Errorf("the sentry's RSS is %d KiB after the stress, %d KiB before (slack %d KiB)", rss1>>10, rss0>>10, stressRSSSlack>>10)
	}
}

// TestStressCycles: one process freezes and thaws itself stressCycles times in a row.
func TestStressCycles(t *testing.T) {
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		rss0, rss1, fd0, fd1, out := sentryFigures(t, p, "cycles", strconv.Itoa(stressCycles), "stress.ckpt")
		if !strings.Contains(out, fmt.Sprintf("cycles=%d ok\n", stressCycles)) {
			t.Fatalf("the cycles did not all complete:\n%s", out)
		}
		checkBaseline(t, rss0, rss1, fd0, fd1)
	})
}

// TestStressConcurrent: stressProcs processes freeze and thaw themselves at the same time, twice.
func TestStressConcurrent(t *testing.T) {
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		rss0, rss1, fd0, fd1, out := sentryFigures(t, p, "many", strconv.Itoa(stressProcs), ".", "2")
		if want := fmt.Sprintf("many=%d ok=%d\n", stressProcs, stressProcs); strings.Count(out, want) != 2 {
			t.Fatalf("want %q:\n%s", want, out)
		}
		checkBaseline(t, rss0, rss1, fd0, fd1)
	})
}
