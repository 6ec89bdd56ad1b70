package main

import (
	"testing"

	"gvisor.dev/gvisor/pkg/sentry/control"
	"gvisor.dev/gvisor/pkg/sentry/kernel"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
)

// TestTreeRunning: the host restore waits until every present process of the tree has finished
// its thaw (its name is no longer the restore init's), not only pid 1; a process that exited at
// once does not hold it up once pid 1 runs; zombies are not waited for.
func TestTreeRunning(t *testing.T) {
	m := &treefmt.Manifest{Processes: []treefmt.Process{
		{PID: 1, Comm: "sh"}, {PID: 2, Comm: "busybox"}, {PID: 3, Comm: "cat"},
		{PID: 4, Comm: "false", Zombie: &treefmt.ExitStatus{Code: 1}},
	}}
	procs := func(cmds ...string) []*control.Process {
		var out []*control.Process
		for i, c := range cmds {
			if c != "" {
				out = append(out, &control.Process{PID: kernel.ThreadID(i + 1), Cmd: c})
			}
		}
		return out
	}
	for _, c := range []struct {
		name string
		ps   []*control.Process
		want bool
	}{
		{"all thawing", procs(restoreInitName, restoreInitName, restoreInitName), false},
		{"pid 1 done, pid 2 still thawing", procs("sh", restoreInitName, "cat"), false},
		{"all done", procs("sh", "busybox", "cat"), true},
		{"pid 3 exited at once", procs("sh", "busybox", ""), true},
		{"pid 3 exited, pid 1 not done", procs(restoreInitName, "busybox", ""), false},
		{"pid 1 gone", procs("", "busybox", "cat"), false},
	} {
		if got := treeRunning(c.ps, m); got != c.want {
			t.Errorf("%s: treeRunning = %t, want %t", c.name, got, c.want)
		}
	}
}
