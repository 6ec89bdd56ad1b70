package vfsfh

import (
	"fmt"
	"strings"
)

// File type bits of st_mode (S_IFMT and its values), as Linux defines them.
const (
	ModeTypeMask = 0o170000 // S_IFMT
	ModeSocket   = 0o140000 // S_IFSOCK
	ModeSymlink  = 0o120000 // S_IFLNK
	ModeRegular  = 0o100000 // S_IFREG
	ModeBlockDev = 0o060000 // S_IFBLK
	ModeDir      = 0o040000 // S_IFDIR
	ModeCharDev  = 0o020000 // S_IFCHR
	ModeFIFO     = 0o010000 // S_IFIFO
)

// deletedSuffix is what gVisor (like Linux) appends to the path of an unlinked file.
const deletedSuffix = " (deleted)"

// Handle identifies one file at freeze time.
type Handle struct {
	// Path is the absolute path in the sandbox's mount namespace at freeze, as /proc/pid/fd/N
	// shows it (so an unlinked file ends in " (deleted)").
	Path string
	// DevMajor, DevMinor and Ino are the file's device and inode numbers inside the sandbox.
	DevMajor, DevMinor uint32
	Ino                uint64
	// Mode is st_mode: file type and permission bits.
	Mode uint32
	// Size is st_size in bytes.
	Size int64
	// MtimeNano and CtimeNano are st_mtime and st_ctime in Unix nanoseconds.
	MtimeNano, CtimeNano int64
}

// Type returns the file type bits of h.Mode (one of the Mode* type constants, or 0).
func (h Handle) Type() uint32 { return h.Mode & ModeTypeMask }

// Deleted reports whether the file was already unlinked when the handle was made; such a file
// cannot be reopened by path.
func (h Handle) Deleted() bool { return strings.HasSuffix(h.Path, deletedSuffix) }

// Reopenable reports whether a thaw can reopen the file by its path: an absolute path to a file that
// was not unlinked, whose type can be opened by path (regular file, directory, device, FIFO, symlink
// for O_PATH). Sockets and anonymous inodes ("pipe:[N]", "anon_inode:[...]") are not.
func (h Handle) Reopenable() bool {
	if !strings.HasPrefix(h.Path, "/") || h.Deleted() {
		return false
	}
	switch h.Type() {
	case ModeRegular, ModeDir, ModeCharDev, ModeBlockDev, ModeFIFO, ModeSymlink:
		return true
	}
	return false
}

// String describes the handle for logs and errors.
func (h Handle) String() string {
	return fmt.Sprintf("%q (dev %d:%d ino %d mode %#o size %d)", h.Path, h.DevMajor, h.DevMinor, h.Ino, h.Mode, h.Size)
}
