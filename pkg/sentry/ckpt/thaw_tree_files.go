package ckpt

import (
	"fmt"
	"sort"
	"sync"

	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// Shared fd tables of a restored tree. Processes that shared one fd table (files_of: a clone with
// CLONE_FILES) are created sharing it again (sharedCloneFlags) in an exact restore. An exec would
// give each a copy (gVisor's Execve forks the table), so they are thawed in place
// (thaw_tree_tids.go), and the table is filled once: by the thaw of the group's lowest pid, the
// owner, whose image lists the same fds as the others' (one table at the freeze). The others skip
// installing fds and wait, before any of their threads runs, until the owner has installed them.

// filesShare is one fd table group's coordination between its thaws.
type filesShare struct {
	once      sync.Once
	installed chan struct{} // Closed once the owner's fds are installed, or its thaw failed.
	failed    bool          // Written before installed is closed.
}

// done records the owner's outcome (once).
func (s *filesShare) done(failed bool) {
	s.once.Do(func() {
		s.failed = failed
		close(s.installed)
	})
}

// shareFDTables groups the live processes that were created on one fd table and gives each its
// group's filesShare; the lowest pid of a group is its owner.
func (r *treeRestore) shareFDTables() {
	if !r.exact {
		return
	}
	tables := make(map[*kernel.FDTable][]*restoreNode)
	for _, n := range r.nodes {
		if n.rec == nil || n.rec.Zombie != nil || n.task == nil {
			continue
		}
		if fdt := n.task.FDTable(); fdt != nil {
			tables[fdt] = append(tables[fdt], n)
		}
	}
	for _, ns := range tables {
		if len(ns) < 2 {
			continue
		}
		sort.Slice(ns, func(i, j int) bool { return ns[i].rec.PID < ns[j].rec.PID })
		s := &filesShare{installed: make(chan struct{})}
		for i, n := range ns {
			n.fdShare, n.fdOwner = s, i == 0
		}
	}
}

// installSharedTable installs p's fds if p owns its fd table (or has none shared) and tells the
// group's other thaws.
//
// Preconditions: running on t's task goroutine, in commit.
func (p *thawPlan) installSharedTable(t *kernel.Task) error {
	if p.fdShare != nil && !p.fdOwner {
		return nil // The owner installs the table's fds (waitSharedTable).
	}
	err := p.installFiles(t)
	if p.fdShare != nil {
		p.fdShare.done(err != nil)
	}
	return err
}

// waitSharedTable waits, in a thaw that does not own its fd table, until the owner has installed
// the table's fds; nothing of the process runs before.
//
// Preconditions: running on t's task goroutine, in commit.
func (p *thawPlan) waitSharedTable(t *kernel.Task) error {
	if p.fdShare == nil || p.fdOwner {
		return nil
	}
	if _, ok := waitChan(t, p.fdShare.installed); !ok {
		return fmt.Errorf("killed while waiting for the shared fd table: %w", linuxerr.EINTR)
	}
	if p.fdShare.failed {
		return fmt.Errorf("the thaw of the process owning the shared fd table failed: %w", linuxerr.EINVAL)
	}
	return nil
}
