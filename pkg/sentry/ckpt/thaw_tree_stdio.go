package ckpt

import (
	"gvisor.dev/gvisor/pkg/sentry/fsimpl/host"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// The foreground process group of the container's terminal. A container started with a terminal
// has the runtime's pty as its stdio, one host TTY file that the restore init gets anew (the new
// container's terminal, docs/tree-format.md "Terminals") and that is the init's controlling
// terminal, with the init's group in the foreground. The freeze recorded the terminal's
// foreground group (Manifest.StdioForeground, freeze_tree_stdio.go): an interactive shell puts
// the job it runs in the foreground there, and that job, restored in the background, would stop
// (SIGTTIN) at its next read of the terminal.

// restoreStdioForeground sets the recorded foreground group on the caller's terminal stdio once
// every process of the tree is in its group: only in a whole-container restore (exact pids, the
// caller is the init and leads the terminal's session). Failures are logged: the restore goes on
// with the init's group in the foreground, as before the group was recorded.
func (r *treeRestore) restoreStdioForeground(t *kernel.Task) {
	pgid := r.m.StdioForeground
	if pgid <= 0 || !r.self || !r.exact {
		return
	}
	for _, n := range r.stdio {
		f := t.GetFile(n)
		if f == nil {
			continue
		}
		tty, ok := f.Impl().(*host.TTYFileDescription)
		f.DecRef(t)
		if !ok {
			continue
		}
		if err := t.ThreadGroup().SetForegroundProcessGroupID(t, tty.TTY(), kernel.ProcessGroupID(pgid)); err != nil {
			t.Infof("ckpt: thaw: the terminal's foreground group was %d: %v: the init's group is the foreground one", pgid, err)
		} else {
			t.Infof("ckpt: thaw: the terminal's foreground process group is %d again", pgid)
		}
		return
	}
}
