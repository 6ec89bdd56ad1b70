package test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// Application huge pages (docs/notes-pause.md, "Application huge pages"): gVisor backs a sandbox's
// memory with 2 MiB pages when the host's transparent huge pages allow it for shared memory, and
// the image writer is then ~40 % faster (no page tables to build per 4 KiB). The rest of the suite
// runs with whatever the host has (Debian's default: never); this test turns them on for itself.

// thpDir is where the host's transparent huge page settings are.
const thpDir = "/sys/kernel/mm/transparent_hugepage"

// thpSetting returns the selected value of a sysfs choice file ("always [madvise] never").
func thpSetting(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(thpDir, name))
	if err != nil {
		t.Fatalf("reading the host's huge page setting: %v", err)
	}
	s := string(b)
	i, j := strings.IndexByte(s, '['), strings.IndexByte(s, ']')
	if i < 0 || j < i {
		t.Fatalf("%s/%s: no selected value in %q", thpDir, name, s)
	}
	return s[i+1 : j]
}

// setTHP writes value to the sysfs file name and restores the old value when t ends.
func setTHP(t *testing.T, name, value string) {
	t.Helper()
	old := thpSetting(t, name)
	if old == value {
		return
	}
	path := filepath.Join(thpDir, name)
	if err := os.WriteFile(path, []byte(value), 0); err != nil {
		t.Fatalf("setting %s to %s (the test needs root): %v", path, value, err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(path, []byte(old), 0); err != nil {
			t.Errorf("restoring %s to %s: %v", path, old, err)
		}
	})
}

// appHugePagesOn sets the host so that gVisor uses huge pages for application memory, by its own
// rule (runsc/boot/loader.go, createMemoryFile): shmem_enabled advise, with a defrag setting that
// does not compact memory in line (defer here), for the duration of t.
func appHugePagesOn(t *testing.T) {
	t.Helper()
	setTHP(t, "shmem_enabled", "advise")
	switch thpSetting(t, "defrag") {
	case "always", "defer", "never":
	default:
		setTHP(t, "defrag", "defer")
	}
}

// shmemHugeKiB returns the host's ShmemHugePages (/proc/meminfo) in KiB: shared memory, such as a
// sandbox's memory file, held in huge pages.
func shmemHugeKiB() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "ShmemHugePages:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/meminfo: %q: %w", sc.Text(), err)
			}
			return n, nil
		}
	}
	return 0, errors.New("/proc/meminfo has no ShmemHugePages line")
}

// TestAppHugePages: with the host's huge pages on for shared memory, the sandbox's memory really is
// in huge pages (the host's ShmemHugePages grows by at least half the guest's 64 MiB while it
// runs), and the routes issue 11 measures with them still hold: a freeze by another process while
// the target rewrites its memory gives one instant's memory and lets the target run during the
// write; a freeze and a thaw in a new sandbox bring back memory, registers and the rest
// (thaw_roundtrip's checks).
func TestAppHugePages(t *testing.T) {
	appHugePagesOn(t)
	worker := h.BuildC(t, "pause_worker")
	freezer := h.BuildC(t, "pause_freeze")
	roundtrip := h.BuildC(t, "thaw_roundtrip")
	h.ForEachPlatform(t, func(t *testing.T, platform string) {
		base, err := shmemHugeKiB()
		if err != nil {
			t.Fatal(err)
		}
		s := h.NewSandbox(t, harness.Opts{Platform: platform, Persist: true})
		img := filepath.Join(s.Dir, "huge.img")
		script := pauseWorkerScript(worker, s.Dir, 64) + freezeWhileRunningScript(freezer, img, s.Dir)
		// The host's huge shared memory is sampled while the sandbox runs (a file made on the
		// host is no gate: the sandbox caches its directories, so the guest would never see it).
		// The worker lives through its start, the freeze and two passes: hundreds of samples.
		type sample struct {
			peak int64
			err  error
		}
		stop, done := make(chan struct{}), make(chan sample)
		go func() {
			var most sample
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					done <- most
					return
				case <-tick.C:
					n, err := shmemHugeKiB()
					if err != nil {
						most.err = err
					}
					most.peak = max(most.peak, n-base)
				}
			}
		}()
		r := s.Run(t, s.DoArgs("/bin/bash", "-c", script)...)
		close(stop)
		got := <-done
		if got.err != nil {
			t.Fatal(got.err)
		}
		grew := got.peak
		if grew < 32<<10 {
			t.Errorf("the host's ShmemHugePages grew by %d KiB while a guest held 64 MiB, want at least 32 MiB: the sandbox's memory is not in huge pages", grew)
		}
		wantRanDuringWrite(t, r)
		checkOneInstant(t, img, workerBuffer(t, s.Dir))

		rt, mapf, logf := roundtripFiles(t)
		frozen := frozenGuest(t, platform, "r=0 errno=0", roundtrip, rt, mapf, logf)
		sum := field(frozen.Stdout, "sum")
		thawed := checkpt(t, platform, "-r", rt)
		thawed.WantExit(t, 0)
		if want := roundtripThawed(sum); sum == "" || !strings.Contains(thawed.Stdout, want) {
			t.Errorf("thawed guest printed something else; want %q:\n%s", want, thawed)
		}
	})
}
