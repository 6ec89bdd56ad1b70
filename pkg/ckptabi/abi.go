// Package ckptabi is the guest ABI of runsc-ckpt's process checkpointing: the syscall number, call
// types, flags, signals and errnos of sys_checkpoint, as docs/abi.md describes them and
// include/ckpt.h gives them to C programs. It is the one Go source of those values: the sentry
// (pkg/sentry/ckpt), the guest tool (pkg/checkpt), the codec (pkg/imgfmt) and the CLI take them
// from here, and abi_test.go fails when include/ckpt.h and this package differ.
//
// The package imports nothing outside the standard library, so that the guest tool, which runs
// before gVisor's packages initialise, may use it. The names are those of the C header (and of
// DragonFly BSD), so that grep finds both sides.
package ckptabi

// This file holds only constants, each the value of the C macro of the same name in
// include/ckpt.h (abi_test.go compares the two sets both ways). The constants are untyped so that
// each user gives them its own type (the sentry's int32 and linux.Signal, a syscall argument's
// uintptr).
const (
	// SYS_checkpoint is the x86-64 syscall number of
	// long sys_checkpoint(int type, int fd, pid_t pid, int retval). It lies far above Linux's
	// allocated numbers and below the sentry's syscall table size.
	SYS_checkpoint = 1000

	// CKPT_FREEZE writes the image of a process to fd (or, with fd == -1 and pid == -1, to the
	// file named by the policy's ckpt-file template) and returns 0 in the running process.
	CKPT_FREEZE = 1

	// CKPT_THAW replaces the calling process with the image read from fd; pid must be -1. It does
	// not return on success: the thawed program's own sys_checkpoint call returns retval.
	CKPT_THAW = 2

	// CKPT_FREEZE_TREE (runsc-ckpt's extension) freezes a process and all its descendants into a
	// tree stream: sys_checkpoint(CKPT_FREEZE_TREE, fd, pid, flags), flags 0 or CKPT_TREE_KILL.
	CKPT_FREEZE_TREE = 3

	// CKPT_THAW_TREE recreates a tree checkpoint directory and thaws every process:
	// sys_checkpoint(CKPT_THAW_TREE, dirfd, -1, flags), flags 0, CKPT_TREE_SELF, CKPT_TREE_REPORT.
	CKPT_THAW_TREE = 4

	// CKPT_FREEZE_ASYNC is CKPT_FREEZE that returns once the process is snapshotted; the image is
	// written in the background. Type 5 stays unassigned (tests probe it as an unknown type).
	CKPT_FREEZE_ASYNC = 6

	// CKPT_WAIT waits for the images the calling process started with CKPT_FREEZE_ASYNC:
	// sys_checkpoint(CKPT_WAIT, -1, -1, flags), flags 0 or CKPT_WAIT_NOHANG.
	CKPT_WAIT = 7

	// CKPT_FREEZE_INCR is CKPT_FREEZE whose image is incremental against the image open at
	// parentfd: sys_checkpoint(CKPT_FREEZE_INCR, fd, pid, parentfd) (docs/incremental.md).
	CKPT_FREEZE_INCR = 8
)

// Flags, the fourth argument of the types that take flags.
const (
	// CKPT_WAIT_NOHANG makes CKPT_WAIT return the number of images still being written instead
	// of waiting, if any is.
	CKPT_WAIT_NOHANG = 1

	// CKPT_TREE_KILL makes CKPT_FREEZE_TREE kill the tree (SIGKILL) once the calling process has
	// exited with status 0; the tree stays stopped, as written, until then, and runs on if the
	// caller exits otherwise (it could not store the stream).
	CKPT_TREE_KILL = 1

	// CKPT_TREE_IMAGE_FDS_SHIFT places a count n (1 to CKPT_TREE_IMAGE_FDS_MAX) in the flags of
	// CKPT_FREEZE_TREE: flags | n<<CKPT_TREE_IMAGE_FDS_SHIFT. The caller's fds 3 to 3+n-1 are then
	// regular files open for writing, one per image: the image of the i-th process (pid order) is
	// written into fd 3+i, from offset 0, instead of into the stream, which says so with a SLOT
	// record (docs/tree-format.md); processes beyond the n-th go into the stream.
	CKPT_TREE_IMAGE_FDS_SHIFT = 16

	// CKPT_TREE_IMAGE_FDS_MAX bounds the count of image fds of CKPT_TREE_IMAGE_FDS_SHIFT.
	CKPT_TREE_IMAGE_FDS_MAX = 1024

	// CKPT_TREE_SHA256 makes CKPT_FREEZE_TREE record each file's sparse SHA-256 in the manifest
	// instead of its CRC-32C (the default, manifest version 5): slower (about three times a copy
	// of the bytes), readable by builds that know only SHA-256 (docs/tree-format.md, "Digests").
	CKPT_TREE_SHA256 = 8

	// CKPT_TREE_SELF makes CKPT_THAW_TREE turn the caller into the tree's root process.
	CKPT_TREE_SELF = 2

	// CKPT_TREE_REPORT makes a failed CKPT_THAW_TREE write why it failed, as one line, to the
	// caller's fd 2 (the restore init of a container restore has no other way to say it).
	CKPT_TREE_REPORT = 4
)

// Signals whose default action is a checkpoint.
const (
	// SIGCKPT writes the ckpt-file image of the receiving process, which continues.
	SIGCKPT = 62

	// SIGCKPTEXIT writes the ckpt-file image of the receiving process, which then exits.
	SIGCKPTEXIT = 63
)
