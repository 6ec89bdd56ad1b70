package ckpt

import (
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// A thaw keeps the thawer's pid, so the thawed program starts in the thawer's process group and
// session. A program that led its own session or group at the freeze (a daemon after setsid(), a
// shell job) would then signal its thawer's group with kill(0, sig) (issue 13 item 9). So the
// commit makes it lead a new session again (setsid) if it led one, else a new process group
// (setpgid(0, 0)) if it led one, with the same rules as those syscalls: setsid fails for a process
// group leader (a job a shell started with job control), setpgid for a session leader. Then the
// program stays where the thawer was, and the thaw logs it (docs/abi.md says so). A program that
// was a member of another process's group or session stays in the thawer's: the pids it knew are
// not there. Tree restores (keepNone) rebuild sessions and groups themselves (thaw_tree.go).

// restoreSession applies the image's session and process-group leadership to t's process.
//
// Preconditions: running on t's task goroutine, in commit.
func (p *thawPlan) restoreSession(t *kernel.Task) {
	if p.keepNone {
		return
	}
	info := &p.proc.Info
	tg := t.ThreadGroup()
	switch {
	case info.SID == info.PID:
		if _, err := tg.CreateSession(t); err != nil {
			t.Infof("ckpt: thaw: the program led its session at the freeze, but cannot lead a new one (setsid: %v); it stays in the thawer's session", err)
		}
	case info.PGID == info.PID:
		if err := tg.CreateProcessGroup(); err != nil {
			t.Infof("ckpt: thaw: the program led its process group at the freeze, but cannot lead a new one (setpgid: %v); it stays in the thawer's group", err)
		}
	}
}
