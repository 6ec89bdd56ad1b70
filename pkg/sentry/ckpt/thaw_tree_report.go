package ckpt

import (
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
	"gvisor.dev/gvisor/pkg/usermem"
)

// A container restore's init (treefmt.RestoreInit) is a few dozen bytes of machine code: when its
// CKPT_THAW_TREE fails it can only print a fixed line, and without --debug the reason (which file
// changed, which pid could not be had) was lost. With CKPT_TREE_REPORT the sentry writes the reason
// to the caller's fd 2 (the container's stderr, which the restore command and the engines show)
// before the call returns.

// maxReportLen bounds the reason line (a manifest names files; the line must stay one line).
const maxReportLen = 1024

// treeFailureLine returns the line CKPT_TREE_REPORT writes for err: one line, control characters
// escaped (names in it come from the checkpoint, which the guest may have crafted).
func treeFailureLine(err error) []byte {
	msg := imgfmt.Printable(err.Error())
	if len(msg) > maxReportLen {
		msg = msg[:maxReportLen] + "..."
	}
	return []byte("runsc-ckpt restore: " + msg + "\n")
}

// reportTreeFailure writes why a tree restore failed to t's fd 2, once, without blocking (a full
// pipe loses the line; the debug log keeps it).
//
// Preconditions: running on t's task goroutine.
func reportTreeFailure(t *kernel.Task, err error) {
	f := t.GetFile(2)
	if f == nil {
		return
	}
	defer f.DecRef(t)
	if _, werr := f.Write(t, usermem.BytesIOSequence(treeFailureLine(err)), vfs.WriteOptions{}); werr != nil {
		t.Debugf("ckpt: tree restore: reporting the failure on fd 2: %v", werr)
	}
}
