package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
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

		b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Cwd: a.Dir, Args: []string{"/nonexistent-never-run"}})
		b.MustRun(t, "restore", "--image-path", dir, "--bundle", a.Bundle, "--detach", b.ID)
		checkRestored(t, b, m)
		log := filepath.Join(a.Dir, "ghost.log")
		read := func() string { b, _ := os.ReadFile(log); return string(b) }
		b.Exec(t, busybox, "kill", "-s", "USR1", fmt.Sprint(-daemon[0].PGID)).WantExit(t, 0)
		waitFor(t, 30*time.Second, func() bool { return strings.Count(read(), "\n") >= 2 })
		b.Exec(t, busybox, "kill", "-s", "USR1", fmt.Sprint(-piped[0].PGID)).WantExit(t, 0)
		waitFor(t, 30*time.Second, func() bool { return strings.Count(read(), "\n") >= 3 })
		b.Exec(t, busybox, "kill", "-s", "USR1", "1").WantExit(t, 0)
		waitFor(t, 30*time.Second, func() bool { return strings.Contains(read(), "init ") })
		lines := strings.Split(strings.TrimSpace(read()), "\n")
		if len(lines) != 4 {
			t.Errorf("ghost.log has %d lines, want 4:\n%s", len(lines), read())
		}
		for _, l := range lines {
			if !strings.HasSuffix(l, " ok") {
				t.Errorf("after the restore: %q", l)
			}
		}
		checkRestored(t, b, m)
	})
}
