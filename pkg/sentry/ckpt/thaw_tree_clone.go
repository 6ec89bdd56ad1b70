package ckpt

import (
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
)

// sharedCloneFlags returns the clone flags that make child share with parent what the manifest
// says they shared: CLONE_FS when both are in one fs context group (fs_of). The restored child is
// cloned by its restored parent, so only a context shared with the parent (directly, or through a
// common lower pid) can be recreated; a context shared with another process only is restored
// unshared. The fs context survives the thaw's exec (gVisor's Execve forks the fd table but keeps
// the fs context), and each thaw sets the same working directory and umask in it.
//
// Fd tables (files_of) are not shared again: the thaw must exec (the only exported way to drop
// the agent's other state), and gVisor's Execve gives the task a fork of its fd table
// (kernel.Task.Execve: t.fdTable.Fork) with no exported way to put a task on another's table
// afterwards. Each process gets its own table with the same open file descriptions (shared
// offsets and flags); an fd opened or closed later by one is not seen by the other.
func sharedCloneFlags(child, parent *treefmt.Process) uint64 {
	if child == nil || parent == nil || parent.Zombie != nil {
		return 0
	}
	group := func(p *treefmt.Process) int32 {
		if p.FSOf != 0 {
			return p.FSOf
		}
		return p.PID
	}
	if child.FSOf != 0 && group(child) == group(parent) {
		return linux.CLONE_FS
	}
	return 0
}
