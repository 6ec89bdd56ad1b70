package ckptabi

import "syscall"

// Errnos is every errno sys_checkpoint returns, the rows of docs/abi.md's table of errors
// (abi_test.go checks the two agree). ENOSYS, the answer outside runsc-ckpt, is not one of them.
var Errnos = []syscall.Errno{
	syscall.EPERM, syscall.EOPNOTSUPP, syscall.EINVAL, syscall.ESRCH, syscall.EBADF, syscall.ERANGE,
	syscall.ESTALE, syscall.EAGAIN, syscall.ENOSPC, syscall.EIO, syscall.EPIPE, syscall.EINTR,
	syscall.EACCES, syscall.ENOMEM, syscall.EMFILE, syscall.ENFILE, syscall.EBUSY, syscall.EEXIST,
	syscall.EADDRINUSE, syscall.EFBIG,
	// Only CKPT_THAW_TREE's argument check (the fd is not a directory); a file the image names
	// that is now a non-directory on the path is ESTALE (staleErrnos, ThawErrno).
	syscall.ENOTDIR,
}

// notThaw are the errnos of Errnos a thaw never returns: EAGAIN is the limit of images written in
// the background, which only freezes meet.
var notThaw = map[syscall.Errno]bool{syscall.EAGAIN: true}

// staleErrnos are what reopening a file the image names fails with when that file is now of
// another kind or gone: for the caller of a thaw the file changed (ESTALE).
var staleErrnos = map[syscall.Errno]bool{
	syscall.EISDIR: true, syscall.ENOTDIR: true, syscall.ENXIO: true, syscall.ENODEV: true,
	syscall.ELOOP: true, syscall.ENOENT: true,
}

// Documented reports whether e is one of Errnos.
func Documented(e syscall.Errno) bool {
	for _, d := range Errnos {
		if d == e {
			return true
		}
	}
	return false
}

// ThawErrno reduces an errno a thaw met to what the thaw returns, so that a thaw returns no errno
// outside docs/abi.md's table: a documented errno stays; a file the image names that is now of
// another kind or gone (EISDIR, ENOTDIR, ENXIO, ENODEV, ELOOP, ENOENT) changed (ESTALE); any other
// errno means the image asked for something impossible here (EINVAL).
func ThawErrno(e syscall.Errno) syscall.Errno {
	switch {
	case staleErrnos[e]:
		return syscall.ESTALE
	case Documented(e) && !notThaw[e]:
		return e
	}
	return syscall.EINVAL
}
