package test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// TestObjProc: fds that name processes (issue 8 item 8, issue 13 items 4 and 5) come back naming
// the thawed process: /proc/self/status, /proc/<old pid> (a directory), the freezing thread's
// /proc/self/task/<tid>/stat, /proc/self/fd, /proc/self/exe opened O_PATH|O_NOFOLLOW, a pidfd of the
// process itself; nsfs fds name the thawing sandbox's namespaces; another process's /proc file is
// a placeholder, never that pid's file at the thaw. Thawed in a new sandbox (where the old pids
// name other processes, e.g. threads of the thawer) and in the same one (where the old pid is gone).
func TestObjProc(t *testing.T) {
	guest := h.BuildC(t, "obj_proc")
	const want = "status=1 dir=1 pidfd=1 netns=1 utsns=1 other=1 task=1 exe=1 fddir=1"
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		t.Run("new-sandbox", func(t *testing.T) {
			img := filepath.Join(h.NewDir(t), "proc.ckpt")
			frozenGuest(t, p, "r=0 errno=0", guest, img)
			r := checkpt(t, p, "-r", img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("want %q:\n%s", want, r)
			}
		})
		t.Run("same-sandbox", func(t *testing.T) {
			img := filepath.Join(h.NewDir(t), "proc.ckpt")
			r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c", guest+" "+img+"; "+h.Bin+" checkpt -r "+img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, "r=0 errno=0") || !strings.Contains(r.Stdout, want) {
				t.Errorf("want r=0 then %q:\n%s", want, r)
			}
		})
	})
}
