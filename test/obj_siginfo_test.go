package test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// TestObjPendingSiginfo: pending signals come back with their exact siginfo (sender pid, SI_QUEUE
// values) and count (a real-time signal queued twice is pending twice), on their own queue — the
// thread group's or a second thread's (tgkill, pthread_sigqueue) —, POSIX timers' signals too
// (SI_TIMER with id, value and overrun, still linked to their timer, orphaned or not), and a
// process that goes on after its freeze still has them pending (the freeze only reads them). The same
// guest checks that MADV_DONTFORK is restored (a child forked after the thaw lacks that page only;
// read through the VMA tree's saved fields, docs/upstream-gaps.md "MADV_DONTFORK"), and shows the
// documented behaviour of MADV_WIPEONFORK (refused
// by gVisor) and rseq (ENOSYS on systrap and ptrace). New and same sandbox (docs/notes-thaw.md
// "Pending signals").
func TestObjPendingSiginfo(t *testing.T) {
	guest := h.BuildC(t, "obj_siginfo")
	const want = "siginfo usr1=1 rt1=1 rt2=1 none=1 dontfork=1 wipeonfork=1 rseq=1"
	const wantQueues = "queues timer=1 orphan=1 tkill=1 tq1=1 tq2=1 ttimer=1"
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		t.Run("new-sandbox", func(t *testing.T) {
			img := filepath.Join(h.NewDir(t), "siginfo.ckpt")
			frozenGuest(t, p, "requeued=1", guest, img)
			if out := runTool(t, h.Bin, "inspect", img); !strings.Contains(out, "pending-signals") || !strings.Contains(out, "9 siginfos") || !strings.Contains(out, "timer 0 overrun 5]") || !strings.Contains(out, "orphan]") || !strings.Contains(out, "code -6 thread") || !strings.Contains(out, "MADV_DONTFORK [") {
				t.Errorf("inspect does not show the nine siginfos with their queues and timers and the MADV_DONTFORK range:\n%s", out)
			}
			r := checkpt(t, p, "-r", img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, want) || !strings.Contains(r.Stdout, wantQueues) {
				t.Errorf("want %q and %q:\n%s", want, wantQueues, r)
			}
		})
		t.Run("same-sandbox", func(t *testing.T) {
			img := filepath.Join(h.NewDir(t), "siginfo.ckpt")
			r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c", guest+" "+img+"; "+h.Bin+" checkpt -r "+img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, "requeued=1") || !strings.Contains(r.Stdout, want) || !strings.Contains(r.Stdout, wantQueues) {
				t.Errorf("want requeued=1 then %q and %q:\n%s", want, wantQueues, r)
			}
		})
	})
}
