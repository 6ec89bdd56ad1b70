package ckpt

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// Terminals (issue 8 item 6) are not restored yet: see docs/notes-thaw.md "Terminals". Every fd on
// the devpts filesystem (a pty master or replica) is recorded as a terminal object and thaws as a
// placeholder, never reopened by path: a master reopened by path is a fresh, unconnected pair, and
// a replica /dev/pts/N names whatever terminal has that index at the thaw (gone: the whole thaw
// failed with ESTALE; another process's: its input could be read). Fds 0–2 are the thawer's anyway.

// captureTerminal records which end of a pty file is and, for a replica, its index.
func captureTerminal(t *kernel.Task, file *vfs.FileDescription) *imgfmt.TerminalObject {
	o := &imgfmt.TerminalObject{Index: imgfmt.TerminalIndexUnknown}
	mnt := file.Mount()
	rel, err := t.Kernel().VFS().PathnameWithDeleted(t, vfs.MakeVirtualDentry(mnt, mnt.Root()), file.VirtualDentry())
	if err != nil {
		return o
	}
	if n, err := strconv.ParseUint(strings.TrimPrefix(rel, "/"), 10, 32); err == nil {
		o.Replica, o.Index = true, uint32(n)
	}
	return o
}

// thawTerminal installs the placeholder for a terminal fd.
func thawTerminal(t *kernel.Task, p *imgfmt.Process, o *imgfmt.Object, b *imgfmt.TerminalObject) (*thawedObject, error) {
	first := firstFile(p, o)
	if first == nil {
		return nil, fmt.Errorf("terminal without an fd: %w", errInvalidImage)
	}
	f, err := placeholder(t, first)
	if err != nil {
		return nil, fmt.Errorf("placeholder: %w", err)
	}
	t.Infof("ckpt: thaw: fd %d (%s) is a terminal: placeholder (terminals are not restored)", first.FD, first.Desc)
	return &thawedObject{files: []*vfs.FileDescription{f}}, nil
}
