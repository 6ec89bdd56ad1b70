// Package vfsfh identifies a file inside the sandbox at freeze time and checks, at thaw time, that a
// file reopened by the same path is still that file, unchanged.
//
// gVisor has no usable name_to_handle_at, and the file object behind a memory mapping is not
// reachable, so a handle is the file's path at freeze plus the attributes that tell "same, unchanged
// file" from "something else": device, inode, file type, size, mtime and ctime. Freeze records a
// Handle for every reopenable fd and every mapping stored by reference; thaw reopens the path with the
// thawing task's credentials and calls Verify, which fails with an error matching ErrStale (ESTALE at
// the syscall boundary) when the file is gone, has another type, or changed.
//
// This package is the pure core: it imports nothing from gVisor, so it is unit-tested alone. The
// sentry side (stat a *vfs.FileDescription into a Handle, reopen a Handle by path) is in the
// subpackage sentryfh. Conversion to and from the image's imgfmt.FileHandle is in convert.go.
//
// Inode and device numbers inside gVisor are not stable across sandboxes: gofer-backed files get
// inode numbers in lookup order and filesystems get device minors in mount order. So the default
// check (CheckContent) compares type, size, mtime and ctime, which come from the host file; CheckInode
// adds device and inode and is meant for a thaw in the sandbox that froze.
package vfsfh
