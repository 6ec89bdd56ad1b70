package ckpt

import (
	"github.com/runsc-ckpt/runsc-ckpt/pkg/ckptabi"
	"gvisor.dev/gvisor/pkg/abi/linux"
)

// The guest ABI of sys_checkpoint, as docs/abi.md fixes it, with the sentry's types. The values come from
// package ckptabi, the one Go source of them (checked against include/ckpt.h). The names follow the C
// header (and DragonFly BSD) so that they can be found with grep on both sides.
const (
	// SYS_checkpoint is the x86-64 syscall number of
	// long sys_checkpoint(int type, int fd, pid_t pid, int retval).
	// It is far above Linux's allocated numbers and below sentry.MaxSyscallNum.
	SYS_checkpoint uintptr = ckptabi.SYS_checkpoint

	// CKPT_FREEZE writes the image of a process to fd (or, with fd == -1 and pid == -1, to the
	// file named by the policy's ckpt-file template) and returns 0 in the running process.
	CKPT_FREEZE int32 = ckptabi.CKPT_FREEZE

	// CKPT_THAW replaces the calling process with the image read from fd. It does not return on
	// success: the thawed program's own sys_checkpoint call returns retval instead.
	CKPT_THAW int32 = ckptabi.CKPT_THAW

	// CKPT_FREEZE_TREE (runsc-ckpt's extension; DragonFly has only the two types above) freezes a
	// process tree: sys_checkpoint(CKPT_FREEZE_TREE, fd, pid, flags) stops every thread of pid and
	// of all its descendants (pid 0: of every process of the caller's PID namespace but the
	// caller), captures each process, and writes a tree stream (pkg/imgfmt/treefmt: one image per process
	// and a manifest) to fd. The caller may not be part of the tree, nor a child of one of its
	// processes. flags is 0 or CKPT_TREE_KILL. Returns 0.
	CKPT_FREEZE_TREE int32 = ckptabi.CKPT_FREEZE_TREE

	// CKPT_THAW_TREE recreates a tree checkpoint with its pids, parents, sessions, groups and
	// zombies and thaws every process: sys_checkpoint(CKPT_THAW_TREE, dirfd, -1, flags), flags 0
	// or CKPT_TREE_SELF (thaw_tree.go).
	CKPT_THAW_TREE int32 = ckptabi.CKPT_THAW_TREE

	// CKPT_FREEZE_ASYNC (runsc-ckpt's extension) is CKPT_FREEZE that returns 0 as soon as the
	// process is captured and its memory snapshotted (copy-on-write); the image is written in the
	// background. sys_checkpoint(CKPT_FREEZE_ASYNC, fd, pid, 0). CKPT_WAIT reports the outcome.
	// Type 5 stays unassigned (tests probe it as an unknown type).
	CKPT_FREEZE_ASYNC int32 = ckptabi.CKPT_FREEZE_ASYNC

	// CKPT_WAIT waits for the images the calling process started with CKPT_FREEZE_ASYNC:
	// sys_checkpoint(CKPT_WAIT, -1, -1, flags) returns 0 when all are written, or fails with the
	// errno of the first that failed; flags 0 or CKPT_WAIT_NOHANG (freeze_async.go).
	CKPT_WAIT int32 = ckptabi.CKPT_WAIT

	// CKPT_FREEZE_INCR (runsc-ckpt's extension) is CKPT_FREEZE whose image is incremental
	// against the image open at parentfd (freeze_incr.go, docs/incremental.md).
	CKPT_FREEZE_INCR int32 = ckptabi.CKPT_FREEZE_INCR
)

// Flags of CKPT_FREEZE_TREE and CKPT_THAW_TREE (the fourth argument).
const (
	// CKPT_TREE_KILL makes CKPT_FREEZE_TREE kill every process of the tree (SIGKILL), as `runsc
	// checkpoint` without --leave-running does. Without it the tree runs on. The tree stays
	// stopped, exactly as written, from the freeze until the calling process has exited (it may
	// still be copying the stream), and is killed then. A failed freeze never kills.
	CKPT_TREE_KILL int32 = ckptabi.CKPT_TREE_KILL

	// CKPT_TREE_IMAGE_FDS_SHIFT places the count of image fds (3, 4, ...) in CKPT_FREEZE_TREE's
	// flags; each of the first processes' images is written into its own fd (freeze_tree_writer.go).
	CKPT_TREE_IMAGE_FDS_SHIFT = ckptabi.CKPT_TREE_IMAGE_FDS_SHIFT

	// CKPT_TREE_IMAGE_FDS_MAX bounds that count.
	CKPT_TREE_IMAGE_FDS_MAX = ckptabi.CKPT_TREE_IMAGE_FDS_MAX

	// CKPT_TREE_SHA256 makes CKPT_FREEZE_TREE record SHA-256 digests instead of CRC-32C ones
	// (treeDigest, freeze_tree_writer.go).
	CKPT_TREE_SHA256 int32 = ckptabi.CKPT_TREE_SHA256
)

// Signals whose default action is a checkpoint (docs/abi.md).
const (
	// SIGCKPT writes the ckpt-file image of the receiving process and lets it continue.
	SIGCKPT linux.Signal = ckptabi.SIGCKPT

	// SIGCKPTEXIT writes the ckpt-file image of the receiving process, then makes it exit.
	SIGCKPTEXIT linux.Signal = ckptabi.SIGCKPTEXIT
)
