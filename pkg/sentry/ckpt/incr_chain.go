package ckpt

import (
	"errors"
	"fmt"
	"io"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/vfsfh"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/vfsfh/sentryfh"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// An incremental image names its parent image by path and identity (docs/incremental.md). Both
// a freeze with a parent and the thaw of an incremental image open the chain of images behind it:
// each parent is reopened by its path with the caller's credentials and must be the very image the
// child was frozen against (same file attributes, size, notes digest and freeze time), or the call
// fails with ESTALE. A parent that does not decode, or a chain deeper than imgfmt.MaxChainDepth,
// fails with EINVAL.

// errParentChanged marks a parent image that is not the one its child was frozen against. It
// matches vfsfh.ErrStale, so freeze and thaw both report ESTALE.
var errParentChanged = fmt.Errorf("parent image changed: %w", vfsfh.ErrStale)

// openedChain is a chain of images with a reference on each image file.
type openedChain struct {
	chain *imgfmt.Chain
	files []*vfs.FileDescription // files[i] holds chain.Images[i].
	// copy[i] is set when files[i] may be written by another user (imageWritableByOthers): the
	// thaw copies the ranges it holds instead of mapping them lazily (thaw_incr.go).
	copy []bool
}

// release drops the references on the image files.
func (c *openedChain) release(t *kernel.Task) {
	if c == nil {
		return
	}
	for _, f := range c.files {
		f.DecRef(t)
	}
	c.files = nil
}

// imageSize returns the size of an image file.
func imageSize(t *kernel.Task, f *vfs.FileDescription) (int64, error) {
	st, err := f.Stat(t, vfs.StatOptions{Mask: linux.STATX_SIZE})
	if err != nil {
		return 0, fmt.Errorf("stat: %w", err)
	}
	return int64(st.Size), nil
}

// invalidParent wraps a parent's decode error so that both a freeze (errnoOf) and a thaw
// (thawErrno) report EINVAL.
func invalidParent(path string, err error) error {
	return fmt.Errorf("parent image %s is not a valid image: %v: %w", path, err, linuxerr.EINVAL)
}

// openChain opens the chain of images that starts with first (decoded as p, or decoded here if p
// is nil) and follows each image's parent reference. It takes its own reference on first.
//
// Preconditions: running on t's task goroutine.
func openChain(t *kernel.Task, first *vfs.FileDescription, p *imgfmt.Process) (*openedChain, error) {
	first.IncRef()
	oc := &openedChain{files: []*vfs.FileDescription{first}}
	ok := false
	defer func() {
		if !ok {
			oc.release(t)
		}
	}()
	if p == nil {
		size, err := imageSize(t, first)
		if err != nil {
			return nil, fmt.Errorf("parent image: %w", err)
		}
		if p, err = imgfmt.Decode(fileReaderAt{t: t, f: first}, size); err != nil {
			return nil, invalidParent("", err)
		}
	}
	procs := []*imgfmt.Process{p}
	readers := []io.ReaderAt{fileReaderAt{t: t, f: first}}
	for cur := p; cur.Parent != nil; cur = procs[len(procs)-1] {
		ref := cur.Parent
		if len(procs) == imgfmt.MaxChainDepth {
			return nil, fmt.Errorf("the chain of images is deeper than %d: %w", imgfmt.MaxChainDepth, linuxerr.EINVAL)
		}
		f, err := reopenParent(t, &ref.Image)
		if err != nil {
			return nil, fmt.Errorf("parent image %s: %w", ref.Image.Path, err)
		}
		oc.files = append(oc.files, f)
		size, err := imageSize(t, f)
		if err != nil {
			return nil, fmt.Errorf("parent image %s: %w", ref.Image.Path, err)
		}
		r := fileReaderAt{t: t, f: f}
		q, err := imgfmt.Decode(r, size)
		if err != nil {
			return nil, invalidParent(ref.Image.Path, err)
		}
		digest, err := imgfmt.NotesDigest(r, size)
		if err != nil {
			return nil, invalidParent(ref.Image.Path, err)
		}
		if err := imgfmt.CheckParent(ref, q, size, digest); err != nil {
			return nil, fmt.Errorf("%w: %v", errParentChanged, err)
		}
		procs = append(procs, q)
		readers = append(readers, r)
	}
	c, err := imgfmt.NewChain(procs, readers)
	if err != nil {
		var fe *imgfmt.FormatError
		if errors.As(err, &fe) {
			return nil, fmt.Errorf("%v: %w", err, linuxerr.EINVAL)
		}
		return nil, err
	}
	oc.chain = c
	ok = true
	return oc, nil
}

// reopenParent reopens a parent image as reopenVerified does for content. A handle without times
// was written by the host for a container checkpoint (treefmt.MakeIncrementalDir): its parent may
// be a copy (an engine's export and import), so only its size is compared here; the notes digest
// and freeze time identify it (CheckParent).
func reopenParent(t *kernel.Task, h *imgfmt.FileHandle) (*vfs.FileDescription, error) {
	if h.MtimeNano == 0 && h.CtimeNano == 0 {
		return sentryfh.Reopen(t, vfsfh.FromImage(h), linux.O_RDONLY, vfsfh.CheckSize)
	}
	return reopenVerified(t, h, linux.O_RDONLY, true /* content */)
}
