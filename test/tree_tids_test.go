package test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// TestTreeGoInitTIDs: a multi-threaded Go program as the container's init (the restore's
// coordinator thaws it in place, its threads taken by thread agents: thaw_tree_tids.go) comes back
// from a whole-container checkpoint with the thread ids it had (and threads its runtime starts
// afterwards get new ones), and its runtime still works: a GC
// with a goroutine spinning without calls completes, which needs the preemption signal that Go
// sends to the spinning thread by its id (m.procid).
func TestTreeGoInitTIDs(t *testing.T) {
	guest := h.BuildGo(t, "treego")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Args: []string{guest, "gc.log"}})
		a.RunDetached(t)
		a.WaitForOutput(t, "ready")
		dir, m := checkpointTreeAndDelete(t, a)
		root := m.Process(1)
		if root == nil || len(root.TIDs) < 3 {
			t.Fatalf("the checkpoint does not hold a multi-threaded init: %+v", m.Processes)
		}

		b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Cwd: a.Dir, Args: []string{"/nonexistent-never-run"}})
		b.MustRun(t, "restore", "--image-path", dir, "--bundle", a.Bundle, "--detach", b.ID)
		r := b.Exec(t, busybox, "ls", "/proc/1/task")
		r.WantExit(t, 0)
		var got, want []int
		for _, s := range strings.Fields(r.Stdout) {
			var tid int
			fmt.Sscan(s, &tid)
			got = append(got, tid)
		}
		for _, tid := range root.TIDs {
			want = append(want, int(tid))
		}
		slices.Sort(got)
		slices.Sort(want)
		// Every thread comes back with its id. The Go runtime may start a thread of its own after
		// the restore (an M for a P handed off from a blocking system call): that one takes a
		// fresh id, above every id of the checkpoint. A missing id, or an extra one in between,
		// is a defect.
		for _, tid := range want {
			if !slices.Contains(got, tid) {
				t.Errorf("the restored init has threads %v, at the checkpoint %v: %d is missing", got, want, tid)
			}
		}
		for _, tid := range got {
			if !slices.Contains(want, tid) && tid <= want[len(want)-1] {
				t.Errorf("the restored init has threads %v, at the checkpoint %v: %d was not there and is not new", got, want, tid)
			}
		}
		b.Exec(t, busybox, "kill", "-USR1", "1").WantExit(t, 0)
		log := filepath.Join(a.Dir, "gc.log")
		waitFor(t, 60*time.Second, func() bool { b, _ := os.ReadFile(log); return strings.HasPrefix(string(b), "gc 1 threads ") })
	})
}
