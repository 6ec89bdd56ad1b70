package test

import (
	"path/filepath"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// TestThawTraced (docs/fuzzing.md, finding 4): a process whose tracer asked for clone and fork
// events (PTRACE_O_TRACECLONE, TRACEFORK, TRACEVFORK) thaws a 4-thread image. The thaw's own
// clones, which recreate the image's threads, began a PTRACE_EVENT_CLONE stop each inside gVisor's
// Task.Clone, which relies on the clone syscall's return to enter it: the second one panicked the
// sentry ("Attempting to enter internal stop ... when already in internal stop"), and the tracer
// continuing the half-stopped thawer waited uninterruptibly for a stop that was not going to be
// entered. The thaw's clones are untraced now (CLONE_UNTRACED): the tracer sees no clone event and
// the thawed process runs, its threads join, and it exits with 42.
func TestThawTraced(t *testing.T) {
	guest := h.BuildC(t, "thaw_traced", "-pthread")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		img := filepath.Join(h.NewDir(t), "traced.ckpt")
		r := h.Do(t, harness.Opts{Platform: p, Persist: true}, guest, img)
		r.WantExit(t, 0)
		if want := "freeze=0\nthaw exit=42 clone_events=0\n"; r.Stdout != want {
			t.Errorf("guest output:\n%s\nwant:\n%s\nstderr:\n%s", r.Stdout, want, r.Stderr)
		}
	})
}

// TestTreeFreezeParkedTracee (docs/fuzzing.md, finding 4, the PTRACE_DETACH hazard): a tree
// freeze stuck on a full pipe keeps a traced process parked; its tracer, outside the tree, keeps
// seizing, interrupting and detaching it, and none of those calls may wait for the tree: gVisor's
// PTRACE_DETACH (and every request that needs a ptrace-stopped tracee) waits uninterruptibly for
// the tracee's goroutine to stop once the tracee has begun a ptrace stop, and a parked tracee
// must never have begun one it has not entered. When the reader leaves, the freeze fails with
// EPIPE and the tracee runs again.
func TestTreeFreezeParkedTracee(t *testing.T) {
	guest := h.BuildC(t, "tree_freeze_tracee", "-pthread")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		r := h.Do(t, harness.Opts{Platform: p, Persist: true}, guest)
		r.WantExit(t, 0)
		want := "stuck=1\ntracer=1\nstuck_freeze ret=-1 errno=EPIPE\nreleased=1\nok\n"
		if r.Stdout != want {
			t.Errorf("guest output:\n%s\nwant:\n%s\nstderr:\n%s", r.Stdout, want, r.Stderr)
		}
	})
}

// TestRestoreTreeTraced: the same for a tree restore. `checkpt -r -t DIR`, seized with clone and
// fork events, restores a frozen subtree (a process and its child) with clones of the restore's
// own (tree agents, then the restored processes), which began PTRACE_EVENT_FORK stops inside
// gVisor's Task.Clone like a thaw's thread clones did. The restore must exit with the restored
// root's status, 42 (the checkpt binary's own Go runtime threads are traced as usual).
func TestRestoreTreeTraced(t *testing.T) {
	guest := h.BuildC(t, "thaw_traced", "-pthread")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		s := h.NewSandbox(t, harness.Opts{Platform: p, Persist: true})
		r := s.Run(t, s.DoArgs(guest, "tree", h.Bin, filepath.Join(s.Dir, "tree"))...)
		r.WantExit(t, 0)
		if want := "frozen=1\ntree exit=42\n"; r.Stdout != want {
			t.Errorf("guest output:\n%s\nwant:\n%s\nstderr:\n%s", r.Stdout, want, r.Stderr)
		}
	})
}
