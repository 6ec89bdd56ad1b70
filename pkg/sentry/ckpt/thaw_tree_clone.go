package ckpt

import (
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
)

// sharedCloneFlags returns the clone flags that make child share with parent what the manifest
// says they shared: CLONE_FS when both are in one fs context group (fs_of). The restored child is
// cloned by its restored parent, so only a context shared with the parent (directly, or through a
// common lower pid) can be recreated; a context shared with a sibling only is recreated by that
// sibling (fsSiblingCloner); with any other process it is restored unshared. The fs context survives the thaw's exec (gVisor's Execve forks the fd table but keeps
// the fs context), and each thaw sets the same working directory and umask in it.
//
// CLONE_FILES when both are in one fd table group (files_of), for an exact restore (exact): gVisor's
// Execve gives the task a fork of its fd table (kernel.Task.Execve: t.fdTable.Fork), so such
// processes are thawed in place (thaw_tree_files.go); in a restore into a running sandbox each
// process gets its own table with the same open file descriptions.
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

// fsSiblingCloner returns the already created process that must clone n, with CLONE_FS and
// CLONE_PARENT, so that n shares an fs context its parent does not share (sharedCloneFlags gives
// nothing): a process of n's fs context group (fs_of) with the same recorded parent and, unless n
// leads its own session, the same session (a clone starts in its cloner's session and group; the
// group is joined afterwards). CLONE_PARENT makes the clone a child of the cloner's parent: n's
// parent. Siblings that shared a context their parent did not are made so by a process that
// cloned them with CLONE_FS and exited (they were reparented), or by a clone with
// CLONE_PARENT|CLONE_FS. nil if no such process exists (the context is then restored unshared).
// A cloner that is the namespace's init is not used: gVisor, like Linux, refuses CLONE_PARENT there.
func fsSiblingCloner(n *treefmt.Process, nodes map[int32]*restoreNode) *restoreNode {
	if n == nil || n.FSOf == 0 || n.PPID == 0 {
		return nil
	}
	group := func(p *treefmt.Process) int32 {
		if p.FSOf != 0 {
			return p.FSOf
		}
		return p.PID
	}
	var best *restoreNode
	for _, m := range nodes {
		p := m.rec
		if p == nil || p == n || p.Zombie != nil || m.pid == 0 || m.task == nil || p.PID == 1 || p.PID > n.PID {
			continue
		}
		if group(p) != group(n) || p.PPID != n.PPID || (n.SID != n.PID && p.SID != n.SID) {
			continue
		}
		if best == nil || p.PID < best.rec.PID {
			best = m
		}
	}
	return best
}
