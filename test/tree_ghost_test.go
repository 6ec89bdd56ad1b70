package test

import (
	"fmt"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
)

// TestTreeGhostLeadersOCI: a session and process groups whose leaders have exited
// (test/guests/tree_ghost.c: a daemon that forked, called setsid and forked again; a pipeline
// group whose first process ended) are checkpointed with --format=elf, deleted and restored: every
// process keeps its pid, parent, group and session (the restore makes each missing leader as a
// ghost for its own time only: pkg/sentry/ckpt/thaw_tree_ghosts.go), a signal to each group
// reaches its members, and nothing else is left in the container (the init has no child to reap).
func TestTreeGhostLeadersOCI(t *testing.T) {
	guest := h.BuildC(t, "tree_ghost")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := startGuestTree(t, p, guest, "ghost.log")
		dir, m := checkpointTreeAndDelete(t, a)
		var daemon, piped []treefmt.Process
		for _, pr := range m.Processes {
			switch {
			case m.Process(pr.SID) == nil:
				daemon = append(daemon, pr)
			case m.Process(pr.PGID) == nil:
				piped = append(piped, pr)
			}
		}
		if len(m.Processes) != 4 || len(daemon) != 2 || len(piped) != 1 || daemon[0].SID != daemon[1].SID || daemon[0].PGID != daemon[0].SID {
			t.Fatalf("the checkpoint does not hold two processes of a session led by nobody and one of a group led by nobody: %+v", m.Processes)
		}

		r := restoreLogged(t, p, a, dir, m, "ghost.log")
		r.kill(t, logLines(2), "-s", "USR1", fmt.Sprint(-daemon[0].PGID))
		r.kill(t, logLines(3), "-s", "USR1", fmt.Sprint(-piped[0].PGID))
		r.kill(t, logHas("init "), "-s", "USR1", "1")
		r.checkLines(t, 4)
		checkRestored(t, r.c, m)
	})
}
