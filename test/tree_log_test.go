package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// logRestore is a container restored from a tree checkpoint whose guests write "WHO WHAT ok" lines
// to a log in the original container's directory (test/guests/tree_log.h), and are told by
// SIGUSR1 when to check what they share.
type logRestore struct {
	c    *harness.Container
	path string
}

// restoreLogged restores the checkpoint dir of container a (manifest m) into a new container that
// runs in a's directory, checks its processes against m and returns it with a's log name.
func restoreLogged(t *testing.T, p string, a *harness.Container, dir string, m *treefmt.Manifest, log string) *logRestore {
	t.Helper()
	b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Cwd: a.Dir, Args: []string{"/nonexistent-never-run"}})
	b.MustRun(t, "restore", "--image-path", dir, "--bundle", a.Bundle, "--detach", b.ID)
	checkRestored(t, b, m)
	return &logRestore{c: b, path: filepath.Join(a.Dir, log)}
}

// read returns the log so far.
func (r *logRestore) read() string {
	b, _ := os.ReadFile(r.path)
	return string(b)
}

// kill runs busybox kill with args in the container and waits (30 s at most) until the log
// satisfies until.
func (r *logRestore) kill(t *testing.T, until func(log string) bool, args ...string) {
	t.Helper()
	r.c.Exec(t, append([]string{busybox, "kill"}, args...)...).WantExit(t, 0)
	waitFor(t, 30*time.Second, func() bool { return until(r.read()) })
}

// logHas is a kill condition: the log contains s.
func logHas(s string) func(string) bool {
	return func(log string) bool { return strings.Contains(log, s) }
}

// logLines is a kill condition: the log has at least n lines.
func logLines(n int) func(string) bool {
	return func(log string) bool { return strings.Count(log, "\n") >= n }
}

// checkLines fails t unless the log has want lines, each ending in " ok" or one of also. It first
// waits (30 s at most) for the log to reach want lines: the last kill's condition may be met by
// one process's line while another still has its last one to write (TestTreeTCPAcceptQueueOCI
// failed so once: the child's "done" came after the parent's line the kill waited for).
func (r *logRestore) checkLines(t *testing.T, want int, also ...string) {
	t.Helper()
	pollUntil(30*time.Second, func() bool { return logLines(want)(r.read()) }) // Counted below.
	log := r.read()
	lines := strings.Split(strings.TrimSpace(log), "\n")
	if len(lines) != want {
		t.Errorf("%s has %d lines, want %d:\n%s", filepath.Base(r.path), len(lines), want, log)
	}
	for _, l := range lines {
		ok := strings.HasSuffix(l, " ok")
		for _, s := range also {
			ok = ok || strings.HasSuffix(l, s)
		}
		if !ok {
			t.Errorf("after the restore: %q", l)
		}
	}
}
