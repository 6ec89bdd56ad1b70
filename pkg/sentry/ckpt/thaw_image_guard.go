package ckpt

import (
	"fmt"
	"io"

	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/kernel/auth"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// A thaw maps the image file lazily (MAP_PRIVATE): a page the thawed program has not touched yet
// is read from the file when it first does. Whoever can write the file can therefore change that
// memory after the thaw validated it, or truncate the file and kill the program with SIGBUS
// (issue 13 item 11). That is no new power for the program's owner or root, who may ptrace it
// anyway; it is for anybody else. So an image that a user other than the thawing process's
// effective user (or root) may write -- group- or world-writable, or owned by another user -- is
// copied into a private memory file first, like a streamed image: the thaw then reads the whole
// file once. docs/security.md explains the trade-off.

// imageWritableByOthers returns why f may be written by a user who is neither t's effective user
// nor root, or "" if it may not (judged by its mode and owner; ACLs are not consulted).
func imageWritableByOthers(t *kernel.Task, f *vfs.FileDescription) string {
	st, err := f.Stat(t, vfs.StatOptions{Mask: linux.STATX_MODE | linux.STATX_UID})
	if err != nil {
		return fmt.Sprintf("cannot be stat'ed (%v)", err)
	}
	switch owner := auth.KUID(st.UID); {
	case st.Mode&0o022 != 0:
		return fmt.Sprintf("is group- or world-writable (mode %#o)", st.Mode&0o7777)
	case owner != auth.RootKUID && owner != t.Credentials().EffectiveKUID && st.Mode&0o200 != 0:
		return fmt.Sprintf("is owned and writable by another user (uid %d)", st.UID)
	}
	return ""
}

// copyImageFile copies the seekable image file f into a new memfd.
func copyImageFile(t *kernel.Task, f *vfs.FileDescription) (*imageSource, error) {
	st, err := f.Stat(t, vfs.StatOptions{Mask: linux.STATX_SIZE})
	if err != nil {
		return nil, fmt.Errorf("stat of the image: %w", err)
	}
	mf, err := copyToMemfd(t, io.NewSectionReader(fileReaderAt{t: t, f: f}, 0, int64(st.Size)))
	if err != nil {
		return nil, err
	}
	return &imageSource{file: mf, streamed: true}, nil
}
