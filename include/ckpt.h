/*
 * ckpt.h - guest ABI of runsc-ckpt's process checkpointing (docs/abi.md).
 *
 * A program running inside a runsc-ckpt sandbox can freeze itself (or a process it may ptrace)
 * into an ELF core-format image, and thaw an image in place:
 *
 *     int fd = open("app.ckpt", O_WRONLY | O_CREAT | O_TRUNC, 0600);
 *     long r = sys_checkpoint(CKPT_FREEZE, fd, -1, 0);
 *     if (r == 0)  ... frozen, still running the original process
 *     if (r == 1)  ... resumed from the image by a thaw that passed retval 1
 *
 * Errors (returned as -1 with errno): EPERM (not allowed by the sandbox's ckpt-group policy, or a
 * set-id / non-dumpable process), EOPNOTSUPP (unknown type), EINVAL (bad pid, malformed image),
 * ESRCH (no such process), EBADF (fd not open for writing / reading), ERANGE (RLIMIT_CORE is 0),
 * ESTALE (a file the image refers to changed or vanished), ENOSPC (out of space; no partial image),
 * EBUSY (thaw: a POSIX timer id of the image cannot be had in the thawing process), EAGAIN (freezing
 * another process, or CKPT_FREEZE_ASYNC: the sandbox's limit of images written in the background at
 * once, --ckpt-background, is reached; nothing was captured).
 * Outside runsc-ckpt the call fails with ENOSYS.
 */
#ifndef RUNSC_CKPT_CKPT_H
#define RUNSC_CKPT_CKPT_H

#include <sys/types.h>
#include <unistd.h>
#include <sys/syscall.h>

/* x86-64 syscall number of long sys_checkpoint(int type, int fd, pid_t pid, int retval). */
#define SYS_checkpoint 1000

/* Write the process image to fd; fd == -1 and pid == -1 write to the sandbox's ckpt-file name
 * (default "%N.ckpt" in the current directory). pid: -1 or own pid, or a process the caller
 * may ptrace. Returns 0. */
#define CKPT_FREEZE 1

/* Replace the calling process with the image read from fd; pid must be -1. Does not return on
 * success: the restored program's own sys_checkpoint call returns retval. */
#define CKPT_THAW 2

/* runsc-ckpt's extension (DragonFly has only the two types above): freeze a process tree.
 * sys_checkpoint(CKPT_FREEZE_TREE, fd, pid, flags): stops every thread of pid and of all its
 * descendants (pid 0: of every process of the caller's PID namespace except the caller) at once,
 * captures each process, and writes a tree stream (one ELF image per process, each thawable alone
 * with CKPT_THAW, plus a JSON manifest; docs/tree-format.md) to fd, which may be a pipe. The caller
 * may not be part of the tree nor a child of one of its processes (EINVAL). flags: 0 (the tree runs
 * on) or CKPT_TREE_KILL, either or'ed with CKPT_TREE_SHA256 (SHA-256 digests in the manifest).
 * Errors as CKPT_FREEZE, plus EBUSY if a process of the tree is in a ptrace
 * stop or is a vfork parent waiting for its child (a process in a group stop, SIGSTOP or job
 * control, is captured as stopped and restored stopped). Returns 0. */
#define CKPT_FREEZE_TREE 3

/* Recreate a tree checkpoint directory (dirfd, opened O_RDONLY|O_DIRECTORY) with its pids,
 * parents, sessions, process groups and zombies, then thaw every process (lazily):
 * sys_checkpoint(CKPT_THAW_TREE, dirfd, -1, flags). flags 0: the tree's top processes become
 * children of the caller (pids kept where still free), returns the root's pid. CKPT_TREE_REPORT (may
 * be or'ed with the others): a failure is also described on fd 2. CKPT_TREE_SELF: the
 * caller becomes the tree's root (its pid must be the root's; the caller should be
 * single-threaded, or the sandbox re-execs it first) and the call does not return on success.
 * Errors: EINVAL (malformed or inconsistent checkpoint), ENOTDIR (fd is not a directory), ESTALE,
 * EBUSY (a pid cannot be had), EPERM (a session or group cannot be recreated); everything created
 * is killed on failure. */
#define CKPT_THAW_TREE 4

/* runsc-ckpt's extension: CKPT_FREEZE that returns 0 as soon as the process is captured and its
 * memory snapshotted (copy-on-write); the image is written in the background while the program runs
 * on. sys_checkpoint(CKPT_FREEZE_ASYNC, fd, pid, 0), arguments as CKPT_FREEZE. Do not use fd until
 * CKPT_WAIT says the image is written (its offset moves meanwhile). A ckpt-file (fd == -1,
 * pid == -1) appears under its name only when complete. When no snapshot can be taken (shared file
 * mappings stored by content, MADV_DONTFORK, --ckpt-background=0) the call writes the image before
 * it returns, as CKPT_FREEZE. Extra error: EAGAIN, the sandbox's limit of images written in the
 * background at once (--ckpt-background, default 4) is reached; nothing was captured. A thaw of the
 * image resumes from this call with the thaw's retval, as for CKPT_FREEZE. */
#define CKPT_FREEZE_ASYNC 6

/* sys_checkpoint(CKPT_WAIT, -1, -1, flags): waits until every image the calling process started
 * with CKPT_FREEZE_ASYNC is written; returns 0, or -1 with the errno of the first write that failed
 * since the last CKPT_WAIT (ENOSPC, EIO, EPIPE, ...; each failure is reported once; no partial
 * image is left in a regular file). flags: 0 or CKPT_WAIT_NOHANG. Errors: EINVAL (fd or pid not -1,
 * unknown flag), EINTR (a signal; restarted with SA_RESTART). */
#define CKPT_WAIT 7

/* runsc-ckpt's extension: CKPT_FREEZE whose image is incremental against the image open at
 * parentfd: sys_checkpoint(CKPT_FREEZE_INCR, fd, pid, parentfd). The image stores only the pages
 * that differ from the memory the parent (and its own parents) hold and names the parent by path
 * and identity; a thaw follows the chain (docs/incremental.md). Extra errors: EBADF (parentfd not
 * open for reading, or fd -1), EINVAL (the parent is not a valid image, not a regular file that
 * can be reopened by its path, or its chain is already 16 images deep), ESTALE (an ancestor of
 * the parent changed). A thaw of the image fails with ESTALE if a parent changed or vanished. */
#define CKPT_FREEZE_INCR 8

/* CKPT_WAIT flag: do not wait; return the number of images still being written (> 0), or what
 * CKPT_WAIT returns when none is. */
#define CKPT_WAIT_NOHANG 1

/* CKPT_FREEZE_TREE flag: the tree stays stopped, as written, until the calling process exits;
 * it is then killed (SIGKILL) if the caller exited with status 0, and released (it runs on) if
 * the caller failed (another status, or a signal): the caller decides, once it has stored the
 * stream, whether the checkpoint is complete. */
#define CKPT_TREE_KILL 1

/* CKPT_FREEZE_TREE flags may carry a count n (1 to CKPT_TREE_IMAGE_FDS_MAX) of image files:
 * flags | n << CKPT_TREE_IMAGE_FDS_SHIFT. The caller's fds 3 to 3+n-1 are then regular files open
 * for writing: the image of the i-th process of the tree (pid order) is written into fd 3+i from
 * offset 0 instead of into the stream, which holds a SLOT record for it (docs/tree-format.md);
 * processes beyond the n-th go into the stream as usual. EINVAL if one of the fds is not a
 * writable regular file. */
#define CKPT_TREE_IMAGE_FDS_SHIFT 16
#define CKPT_TREE_IMAGE_FDS_MAX 1024

/* CKPT_FREEZE_TREE flag: the manifest records each image's and archive's sparse SHA-256
 * (image_sha256) instead of its CRC-32C (image_digest "crc32c-sparse:...", the default;
 * docs/tree-format.md "Digests"). Slower; readable by builds that know only SHA-256. */
#define CKPT_TREE_SHA256 8

/* CKPT_THAW_TREE flag: the caller becomes the tree's root process. */
#define CKPT_TREE_SELF 2

/* CKPT_THAW_TREE flag: a failed restore writes why, as one line ("runsc-ckpt restore: REASON"),
 * to the caller's fd 2 before the call returns. */
#define CKPT_TREE_REPORT 4

/* Default action: write the ckpt-file image and continue. */
#define SIGCKPT 62

/* Default action: write the ckpt-file image, then exit. */
#define SIGCKPTEXIT 63

/* sys_checkpoint calls the checkpoint syscall. The arguments are C ints: the kernel reads them
 * as 32-bit values. */
static inline long sys_checkpoint(int type, int fd, pid_t pid, int retval)
{
	return syscall(SYS_checkpoint, type, fd, pid, retval);
}

#endif /* RUNSC_CKPT_CKPT_H */
