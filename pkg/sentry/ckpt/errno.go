package ckpt

import (
	"errors"
	"syscall"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/ckptabi"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/vfsfh"
	"golang.org/x/sys/unix"
	gerrors "gvisor.dev/gvisor/pkg/errors"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
)

// errnoCall says which side of sys_checkpoint an error comes from: the two differ only in what an
// error that carries no errno becomes, and in that a thaw's errnos are reduced to the ones a thaw
// may return.
type errnoCall int

const (
	// errnoFreeze: a freeze (any freeze type, CKPT_WAIT). An error without an errno is a write
	// that failed (EIO).
	errnoFreeze errnoCall = iota
	// errnoThaw: a thaw (CKPT_THAW, CKPT_THAW_TREE) before its point of no return. An error
	// without an errno is an image that cannot be thawed (EINVAL); errnos pass through
	// ckptabi.ThawErrno.
	errnoThaw
)

// sysErrno is the one mapping of an error of sys_checkpoint onto the errno its caller sees
// (docs/abi.md). gVisor's syscall layer panics on errors that are not errnos, so every error that
// leaves the syscall goes through here. In this order:
//   - a file the image names changed or vanished (vfsfh.ErrStale): ESTALE;
//   - a malformed image, or one that cannot be thawed here: EINVAL;
//   - an errno in the chain, gVisor's or a host one: that errno (a thaw's reduced by
//     ckptabi.ThawErrno);
//   - anything else: EIO for a freeze, EINVAL for a thaw.
func sysErrno(call errnoCall, err error) error {
	if err == nil {
		return nil
	}
	var fe *imgfmt.FormatError
	switch {
	case errors.Is(err, vfsfh.ErrStale):
		return linuxerr.ESTALE
	case errors.As(err, &fe), errors.Is(err, errInvalidImage):
		return linuxerr.EINVAL
	}
	var e unix.Errno
	var ge *gerrors.Error
	switch {
	case errors.As(err, &ge):
		e = unix.Errno(ge.Errno())
	case errors.As(err, &e):
	default:
		if call == errnoThaw {
			return linuxerr.EINVAL
		}
		return linuxerr.EIO
	}
	if call == errnoThaw {
		e = unix.Errno(ckptabi.ThawErrno(syscall.Errno(e)))
	}
	if ge != nil && unix.Errno(ge.Errno()) == e {
		return ge
	}
	return linuxerr.ErrorFromUnix(e)
}
