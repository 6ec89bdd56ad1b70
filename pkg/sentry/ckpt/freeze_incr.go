package ckpt

import (
	"fmt"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/vfsfh"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/vfsfh/sentryfh"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// CKPT_FREEZE_INCR (type 8, sys_checkpoint(CKPT_FREEZE_INCR, fd, pid, parentfd)) is CKPT_FREEZE
// whose image is incremental against the image open at parentfd: it stores only the pages that
// differ from the memory the parent (and the parent's own chain) stands for, and names the parent
// by path and identity. gVisor exports no dirty-page tracking, so the pages are compared
// (docs/incremental.md).

// parentRef returns the reference a child records for the parent image open as f.
func parentRef(t *kernel.Task, f *vfs.FileDescription, p *imgfmt.Process) (*imgfmt.ParentRef, error) {
	h, err := sentryfh.FromFD(t, f)
	if err != nil {
		return nil, fmt.Errorf("parent image: %w", err)
	}
	if !h.Reopenable() || h.Type() != vfsfh.ModeRegular {
		return nil, fmt.Errorf("parent image %q cannot be reopened by path (a regular file that is not deleted is needed): %w", h.Path, linuxerr.EINVAL)
	}
	r := fileReaderAt{t: t, f: f}
	digest, err := imgfmt.NotesDigest(r, h.Size)
	if err != nil {
		return nil, invalidParent(h.Path, err)
	}
	return &imgfmt.ParentRef{Image: *h.ToImage(), Size: h.Size, NotesSHA256: digest, FreezeTimeNano: p.Info.FreezeTimeNano}, nil
}

// freezeIncr writes the image of req.target's process into req.file, incremental against the
// image open at parentFD.
//
// Errors: those of CKPT_FREEZE; EBADF if parentFD is not open for reading or the image would go
// to a ckpt-file (fd -1); EINVAL if the parent is not a valid image or not a regular file that can
// be reopened by path; ESTALE if an ancestor named by the parent changed.
//
// Preconditions: running on t's task goroutine; req was validated by newFreezeRequest.
func freezeIncr(t *kernel.Task, req freezeRequest, parentFD int32) error {
	if req.file == nil {
		return linuxerr.EBADF
	}
	parent, err := openFile(t, parentFD, false /* write */)
	if err != nil {
		return err
	}
	defer parent.DecRef(t)
	oc, err := openChain(t, parent, nil)
	if err != nil {
		return syscallError(t, err)
	}
	defer oc.release(t)
	ref, err := parentRef(t, parent, oc.chain.Images[0])
	if err != nil {
		return syscallError(t, err)
	}

	var pi *pendingImage
	if req.self {
		if pi, err = capturePending(t, captureRequest{at: inCheckpointSyscall, image: req.file}, snapSiblings); err != nil {
			return syscallError(t, err)
		}
	} else {
		var w *remoteFreeze
		if pi, w, err = captureOther(t, req); err != nil {
			return err
		}
		defer close(w.written)
	}
	for i := range pi.p.Mappings {
		if r, ok := pi.p.Mappings[i].Contents.(*memReader); ok {
			r.ctx = t
		}
	}
	if err := imgfmt.MakeIncremental(pi.p, oc.chain, ref); err != nil {
		pi.abandon(t)
		return syscallError(t, err)
	}
	sink := newFileSink(t, req.file)
	return syscallError(t, sink.undoIfFailed(pi.write(t, sink)))
}
