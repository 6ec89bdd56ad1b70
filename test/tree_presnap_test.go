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

// rewriteProgress is one line of tree_rewrite's prog.I: when it was written, the pass the
// process is in, and the first page found wrong + 1 (0: none).
type rewriteProgress struct {
	at   time.Time
	pass uint64
	bad  uint64
}

// readRewriteProgress reads prog.i in dir; ok is false while the file is missing or being
// rewritten.
func readRewriteProgress(dir string, i int) (rewriteProgress, bool) {
	b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("prog.%d", i)))
	if err != nil {
		return rewriteProgress{}, false
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return rewriteProgress{}, false
	}
	ns, err1 := strconv.ParseInt(f[0], 10, 64)
	pass, err2 := strconv.ParseUint(f[1], 10, 64)
	bad, err3 := strconv.ParseUint(f[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return rewriteProgress{}, false
	}
	return rewriteProgress{at: time.Unix(0, ns), pass: pass, bad: bad}, true
}

// waitRewriting waits until each of the n tree_rewrite processes writing into dir has checked
// and rewritten its memory at least twice more since after (whichever process writes the files
// now: the original, or the one restored in its place), and fails t if one found a page that
// did not hold the previous pass's value.
func waitRewriting(t *testing.T, dir string, n int, after time.Time, what string) {
	t.Helper()
	first := make([]uint64, n)
	seen := make([]bool, n)
	waitFor(t, 60*time.Second, func() bool {
		done := 0
		for i := 0; i < n; i++ {
			pr, ok := readRewriteProgress(dir, i)
			if !ok || !pr.at.After(after) {
				continue
			}
			if pr.bad != 0 {
				t.Fatalf("%s: process %d found page %d not holding pass %d's value: its memory is not one instant's", what, i, pr.bad-1, pr.pass-1)
			}
			if !seen[i] {
				seen[i], first[i] = true, pr.pass
			}
			if pr.pass >= first[i]+2 {
				done++
			}
		}
		return done == n
	})
}

// TestTreePreSnapshotConsistent: a tree freeze takes a throw-away copy-on-write snapshot of every
// process before it stops anything (freeze_tree_presnap.go), while the processes run on. Three
// processes rewrite 16 MiB each in passes without a pause and check before each pass that every
// page holds the previous pass's value (tree_rewrite.c). The original keeps passing its checks
// after a `checkpoint --leave-running` (the pre-snapshot and the freeze's snapshot left its memory
// intact) and after a second one (whose snapshots find the memory copy-on-write already); each
// checkpoint, restored in a new sandbox, goes on passing them: the restored memory is the one
// instant at which the registers were captured, not a mix with the pre-snapshot's earlier one.
// (A fault injection that made the freeze read its images from the pre-snapshots, taken 300 ms
// before it, failed here at the first restore; one without the 300 ms did not, the processes
// having run no pass between the two: the test shows a mix-up of instants a pass apart.)
func TestTreePreSnapshotConsistent(t *testing.T) {
	guest := h.BuildC(t, "tree_rewrite")
	const n = 3
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Args: []string{guest, strconv.Itoa(n), "16"}})
		a.RunDetached(t)
		a.WaitForOutput(t, "ready")

		var dirs []string
		for i := 0; i < 2; i++ {
			dir := filepath.Join(h.NewDir(t), "ckpt")
			a.MustRun(t, "checkpoint", "--format=elf", "--leave-running", "--image-path", dir, a.ID)
			waitRewriting(t, a.Dir, n, time.Now(), fmt.Sprintf("the original after checkpoint %d", i+1))
			dirs = append(dirs, dir)
		}
		a.Kill(t, "KILL")
		a.Wait(t)

		for i, dir := range dirs {
			b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Args: []string{"/nonexistent-never-run"}})
			start := time.Now()
			b.MustRun(t, "restore", "--image-path", dir, "--bundle", a.Bundle, "--detach", b.ID)
			waitRewriting(t, a.Dir, n, start, fmt.Sprintf("restored checkpoint %d", i+1))
			b.Delete(t, true) // Before the next restore writes the same files.
		}
	})
}
