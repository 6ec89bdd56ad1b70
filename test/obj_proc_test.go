package test

import "testing"

// TestObjProc: fds that name processes (issue 8 item 8, issue 13 items 4 and 5) come back naming
// the thawed process: /proc/self/status, /proc/<old pid> (a directory), the freezing thread's
// /proc/self/task/<tid>/stat, /proc/self/fd, /proc/self/exe opened O_PATH|O_NOFOLLOW, a pidfd of the
// process itself; nsfs fds name the thawing sandbox's namespaces; another process's /proc file is
// a placeholder, never that pid's file at the thaw. Thawed in a new sandbox (where the old pids
// name other processes, e.g. threads of the thawer) and in the same one (where the old pid is gone).
func TestObjProc(t *testing.T) {
	guest := h.BuildC(t, "obj_proc")
	const want = "status=1 dir=1 pidfd=1 netns=1 utsns=1 other=1 task=1 exe=1 fddir=1"
	thawNewAndSame(t, objThaw{guest: guest, img: "proc.ckpt", want: want})
}
