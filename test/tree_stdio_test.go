package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// stdioRedirectScript is a container entrypoint that sends its own stdout to a log and keeps the
// container's stdout on fd 3 (`exec 3>&1 >>log`, as many entrypoint scripts do): it counts into
// count.log and, on SIGUSR1, says so on the container's stdout.
const stdioRedirectScript = `exec 3>&1 >>count.log; trap 'echo "usr1 $i" >&3' USR1; echo ready >&3; ` +
	`i=0; while :; do i=$((i+1)); echo "$i"; sleep 0.05; done`

// TestTreeStdioRedirectOCI: the container's stdio is told by what the runtime gave the container,
// not by fd numbers. A shell whose fd 1 is a log file and whose fd 3 is the container's stdout is
// checkpointed (--format=elf), deleted and restored: fd 1 is still the log (the count goes on in it
// without a gap and nothing of it reaches stdout) and fd 3 is the new container's stdout. Before,
// fds 0-2 of the init were taken as the stdio, so the restored count went to the new stdout and
// the log stopped; the same happened to a shell frozen inside `echo x >> file` (between its dup2
// calls), which lost that one line (TestEngines/docker-elf, once).
func TestTreeStdioRedirectOCI(t *testing.T) {
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := startTree(t, p, stdioRedirectScript)
		log := filepath.Join(a.Dir, "count.log")
		count := func() []string {
			b, _ := os.ReadFile(log)
			return strings.Fields(string(b))
		}
		waitFor(t, 30*time.Second, func() bool { return len(count()) >= 3 })
		dir, m := checkpointTreeAndDelete(t, a)
		at := len(count())

		root := m.Process(1)
		if root == nil {
			t.Fatalf("no pid 1 in the checkpoint: %+v", m.Processes)
		}
		marks := map[int32]int32{}
		for _, fd := range root.FDs {
			if fd.Stdio != nil {
				marks[fd.FD] = *fd.Stdio
			}
		}
		if n, ok := marks[3]; !ok || n != 1 {
			t.Errorf("fd 3 of the init is not marked as the container's stdout: %v", marks)
		}
		if _, ok := marks[1]; ok {
			t.Errorf("fd 1 of the init (the log) is marked as the container's stdio: %v", marks)
		}

		b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Cwd: a.Dir, Args: []string{"/nonexistent-never-run"}})
		b.RestoreDetached(t, "--image-path", dir, "--bundle", a.Bundle)
		// (Not checkRestored: the loop's short-lived sleep child of the checkpoint is gone by now.)
		waitFor(t, 30*time.Second, func() bool { return len(count()) >= at+10 })
		for i, l := range count() {
			if l != fmt.Sprint(i+1) {
				t.Fatalf("count.log line %d is %q (a gap or a repeat; %d lines at the checkpoint):\n%s", i+1, l, at, strings.Join(count(), " "))
			}
		}
		b.Exec(t, busybox, "kill", "-USR1", "1").WantExit(t, 0)
		waitFor(t, 30*time.Second, func() bool { return strings.Contains(b.GuestStdout(), "usr1 ") })
		if out := strings.TrimSpace(b.GuestStdout()); strings.Count(out, "\n") != 0 {
			t.Errorf("the restored container's stdout has more than the USR1 line:\n%s", out)
		}
	})
}
