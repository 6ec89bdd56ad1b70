package ckpt

import "gvisor.dev/gvisor/pkg/abi/linux"

// The guest ABI of sys_checkpoint, as docs/abi.md fixes it and include/ckpt.h mirrors it. The names follow
// the C header (and DragonFly BSD) so that they can be found with grep on both sides.
const (
	// SYS_checkpoint is the x86-64 syscall number of
	// long sys_checkpoint(int type, int fd, pid_t pid, int retval).
	// It is far above Linux's allocated numbers and below sentry.MaxSyscallNum.
	SYS_checkpoint uintptr = 1000

	// CKPT_FREEZE writes the image of a process to fd (or, with fd == -1 and pid == -1, to the
	// file named by the policy's ckpt-file template) and returns 0 in the running process.
	CKPT_FREEZE int32 = 1

	// CKPT_THAW replaces the calling process with the image read from fd. It does not return on
	// success: the thawed program's own sys_checkpoint call returns retval instead.
	CKPT_THAW int32 = 2
)

// Signals whose default action is a checkpoint (docs/abi.md).
const (
	// SIGCKPT writes the ckpt-file image of the receiving process and lets it continue.
	SIGCKPT linux.Signal = 62

	// SIGCKPTEXIT writes the ckpt-file image of the receiving process, then makes it exit.
	SIGCKPTEXIT linux.Signal = 63
)
