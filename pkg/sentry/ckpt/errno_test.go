package ckpt

import (
	"errors"
	"fmt"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/vfsfh"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
)

func TestSysErrno(t *testing.T) {
	stale := fmt.Errorf("fd 4: %w", vfsfh.Gone(vfsfh.Handle{Path: "/x"}, linuxerr.ENOENT))
	for _, c := range []struct {
		name   string
		err    error
		freeze error // What a freeze returns.
		thaw   error // What a thaw returns.
	}{
		{"nil", nil, nil, nil},
		{"stale file", stale, linuxerr.ESTALE, linuxerr.ESTALE},
		{"malformed image", fmt.Errorf("decoding: %w", &imgfmt.FormatError{Offset: 3}), linuxerr.EINVAL, linuxerr.EINVAL},
		{"cannot thaw here", invalidf("other vDSO"), linuxerr.EINVAL, linuxerr.EINVAL},
		{"no errno", errors.New("anything else"), linuxerr.EIO, linuxerr.EINVAL},
		{"documented", fmt.Errorf("limit: %w", linuxerr.EMFILE), linuxerr.EMFILE, linuxerr.EMFILE},
		{"host errno", fmt.Errorf("write: %w", unix.ENOSPC), linuxerr.ENOSPC, linuxerr.ENOSPC},
		{"out of space", fmt.Errorf("write: %w", linuxerr.ENOSPC), linuxerr.ENOSPC, linuxerr.ENOSPC},
		{"interrupted", fmt.Errorf("wait: %w", linuxerr.EINTR), linuxerr.EINTR, linuxerr.EINTR},
		{"EOPNOTSUPP", fmt.Errorf("open: %w", linuxerr.EOPNOTSUPP), linuxerr.EOPNOTSUPP, linuxerr.EOPNOTSUPP},
		{"EACCES", fmt.Errorf("reopen: %w", linuxerr.EACCES), linuxerr.EACCES, linuxerr.EACCES},
		{"EBUSY", fmt.Errorf("timer id: %w", linuxerr.EBUSY), linuxerr.EBUSY, linuxerr.EBUSY},
		// Only documented errnos (docs/abi.md) leave a thaw; a freeze reports the errno it met.
		{"EISDIR", fmt.Errorf("reopen: %w", linuxerr.EISDIR), linuxerr.EISDIR, linuxerr.ESTALE},
		{"ENODEV", fmt.Errorf("reopen: %w", linuxerr.ENODEV), linuxerr.ENODEV, linuxerr.ESTALE},
		{"host ENOENT", fmt.Errorf("reopen: %w", unix.ENOENT), linuxerr.ENOENT, linuxerr.ESTALE},
		{"EFAULT", fmt.Errorf("frame: %w", linuxerr.EFAULT), linuxerr.EFAULT, linuxerr.EINVAL},
		{"EAGAIN", fmt.Errorf("background: %w", linuxerr.EAGAIN), linuxerr.EAGAIN, linuxerr.EINVAL},
	} {
		if got := sysErrno(errnoFreeze, c.err); got != c.freeze {
			t.Errorf("%s: sysErrno(errnoFreeze, %v) = %v, want %v", c.name, c.err, got, c.freeze)
		}
		if got := sysErrno(errnoThaw, c.err); got != c.thaw {
			t.Errorf("%s: sysErrno(errnoThaw, %v) = %v, want %v", c.name, c.err, got, c.thaw)
		}
	}
}
