package ckpt

import (
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
)

// sharedCloneFlags returns the clone flags that make child share with parent what the manifest
// says they shared: CLONE_FS when both are in one fs context group (fs_of). The restored child is
// cloned by its restored parent, so only a context shared with the parent (directly, or through a
// common lower pid) can be recreated; a context shared with a sibling only is recreated by that
// sibling (siblingCloner); with any other process it is restored unshared. The fs context survives the thaw's exec (gVisor's Execve forks the fd table but keeps
// the fs context), and each thaw sets the same working directory and umask in it.
//
// CLONE_FILES when both are in one fd table group (files_of), for an exact restore (exact): gVisor's
// Execve gives the task a fork of its fd table (kernel.Task.Execve: t.fdTable.Fork), so such
// processes are thawed in place (thaw_tree_files.go); a table shared with a sibling only is
// recreated by that sibling (siblingCloner); in a restore into a running sandbox each process gets
// its own table with the same open file descriptions.
func sharedCloneFlags(child, parent *treefmt.Process, exact bool) uint64 {
	if child == nil || parent == nil || parent.Zombie != nil {
		return 0
	}
	var flags uint64
	if exact && child.FilesOf != 0 && filesGroup(child) == filesGroup(parent) {
		flags |= linux.CLONE_FILES
	}
	group := func(p *treefmt.Process) int32 {
		if p.FSOf != 0 {
			return p.FSOf
		}
		return p.PID
	}
	if child.FSOf != 0 && group(child) == group(parent) {
		flags |= linux.CLONE_FS
	}
	return flags
}

// filesGroup returns the lowest pid p shares its fd table with (p's own if none).
func filesGroup(p *treefmt.Process) int32 {
	if p.FilesOf != 0 {
		return p.FilesOf
	}
	return p.PID
}

// siblingCloner returns the already created process that must clone n, and the clone flags, so
// that n shares an fs context (fs_of) or, in an exact restore, an fd table (files_of) that its
// parent does not share with it (sharedCloneFlags gives less than n needs): a process of the same
// group with the same recorded parent and, unless n leads its own session, the same session (a
// clone starts in its cloner's session and group; the group is joined afterwards). The flags hold
// CLONE_PARENT, which makes the clone a child of the cloner's parent (n's parent), and whichever of
// CLONE_FS and CLONE_FILES the cloner's groups give n. Siblings that share a context or a table
// their parent does not were made so by a process that cloned them with CLONE_FS or CLONE_FILES and
// exited (they were reparented), or by a clone with CLONE_PARENT. Of the candidates the one giving
// n the most of what it shares wins (an fd table counts more than an fs context: which fds exist
// is what a program notices first; then the lowest pid); one that gives no more than the parent
// does is not used. nil if none exists (what is shared with nobody else is then restored unshared:
// one fd table per process, on the same open file descriptions). A cloner that is the namespace's
// init is not used: gVisor, like Linux, refuses CLONE_PARENT there.
func siblingCloner(n, parent *treefmt.Process, nodes map[int32]*restoreNode, exact bool) (*restoreNode, uint64) {
	if n == nil || n.PPID == 0 {
		return nil, 0
	}
	var want uint64
	if n.FSOf != 0 {
		want |= linux.CLONE_FS
	}
	if exact && n.FilesOf != 0 {
		want |= linux.CLONE_FILES
	}
	have := sharedCloneFlags(n, parent, exact)
	if want&^have == 0 {
		return nil, 0
	}
	var best *restoreNode
	bestFlags := have
	for _, m := range nodes {
		p := m.rec
		if p == nil || p == n || p.Zombie != nil || m.pid == 0 || m.task == nil || p.PID == 1 || p.PID > n.PID {
			continue
		}
		if p.PPID != n.PPID || (n.SID != n.PID && p.SID != n.SID) {
			continue
		}
		flags := sharedCloneFlags(n, p, exact)
		switch c, b := shareWeight(flags), shareWeight(bestFlags); {
		case c < b, c == b && (best == nil || p.PID > best.rec.PID):
			continue
		}
		best, bestFlags = m, flags
	}
	if best == nil {
		return nil, 0
	}
	return best, bestFlags | linux.CLONE_PARENT
}

// shareWeight ranks what clone flags share: the fd table above the fs context.
func shareWeight(flags uint64) int {
	w := 0
	if flags&linux.CLONE_FILES != 0 {
		w += 2
	}
	if flags&linux.CLONE_FS != 0 {
		w++
	}
	return w
}
