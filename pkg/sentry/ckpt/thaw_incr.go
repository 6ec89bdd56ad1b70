package ckpt

import (
	"fmt"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/memmap"
	"gvisor.dev/gvisor/pkg/usermem"
)

// The thaw of an incremental image follows its chain: prepareChain opens every parent (ESTALE if
// one changed, EINVAL if one is malformed or lacks a page the image needs) before anything of the
// caller changes, and mapDelta installs each delta mapping as the chain resolves it: every range
// whose bytes sit in one image file is mapped MAP_PRIVATE from that file, lazily, as a complete
// image's content mappings are; zero ranges are anonymous memory. A mapping that would need more
// than maxDeltaExtents such ranges (a VMA each), or ranges of a parent another user may write
// (thaw_image_guard.go: the lazily loaded pages could change under the thawed program), is copied
// instead.

// maxDeltaExtents is the most file ranges a delta mapping is mapped as before the thaw copies it
// instead: each range is a VMA, and the address space's VMA count is bounded.
const maxDeltaExtents = 256

// prepareChain opens the chain behind an incremental image; nil for a complete image.
//
// Preconditions: running on t's task goroutine.
func prepareChain(t *kernel.Task, p *imgfmt.Process, src *imageSource) (*openedChain, error) {
	if p.Parent == nil {
		return nil, nil
	}
	oc, err := openChain(t, src.file, p)
	if err != nil {
		return nil, err
	}
	oc.copy = make([]bool, len(oc.files))
	for i, f := range oc.files[1:] {
		if why := imageWritableByOthers(t, f); why != "" {
			t.Debugf("ckpt: thaw: parent image %d %s: its pages are copied, not mapped", i+1, why)
			oc.copy[i+1] = true
		}
	}
	if err := oc.chain.CheckResolvable(); err != nil {
		oc.release(t)
		return nil, err
	}
	for i := range p.Mappings {
		m := &p.Mappings[i]
		if !m.Delta {
			continue
		}
		for _, e := range oc.chain.Resolve(m.Start, m.End) {
			if e.Kind != imgfmt.SourceData {
				continue
			}
			if err := checkMappable(t, oc.files[e.Image], uint64(e.Offset), e.End-e.Start); err != nil {
				oc.release(t)
				return nil, fmt.Errorf("mapping %d [%#x, %#x): image %d of the chain cannot be mapped: %w", i, m.Start, m.End, e.Image, err)
			}
		}
	}
	return oc, nil
}

// mapDelta maps delta mapping mp as the chain resolves it (opts describe the whole mapping).
//
// Preconditions: as mapOne; prepareChain succeeded.
func (p *thawPlan) mapDelta(t *kernel.Task, mp *imgfmt.Mapping, opts memmap.MMapOpts) error {
	c := p.chain.chain
	extents := c.Resolve(mp.Start, mp.End)
	files, unsafe := 0, false
	for _, e := range extents {
		if e.Kind == imgfmt.SourceData {
			files++
			unsafe = unsafe || p.chain.copy[e.Image]
		}
	}
	if files > maxDeltaExtents || unsafe || eagerContent(mp) {
		t.Debugf("ckpt: thaw: delta mapping [%#x, %#x) %q: %d ranges in image files, copied", mp.Start, mp.End, mp.Name, files)
		return p.copyDelta(t, mp, opts)
	}
	for _, e := range extents {
		o := opts
		o.Addr = hostarch.Addr(e.Start)
		o.Length = e.End - e.Start
		if e.Kind != imgfmt.SourceData {
			o.GrowsDown = mp.GrowsDown
			o.NameMut = memmap.NameMutAnon
			o.Name = mp.Name
			if _, err := t.MemoryManager().MMap(t, o); err != nil {
				return fmt.Errorf("zero range [%#x, %#x): %w", e.Start, e.End, err)
			}
			continue
		}
		f := p.chain.files[e.Image]
		o.Offset = uint64(e.Offset)
		o.Name = mp.Name
		if err := f.ConfigureMMap(t, &o); err != nil {
			return fmt.Errorf("configuring the mapping of image %d of the chain: %w", e.Image, err)
		}
		_, err := t.MemoryManager().MMap(t, o)
		if o.MappingIdentity != nil {
			o.MappingIdentity.DecRef(t)
		}
		if err != nil {
			return fmt.Errorf("range [%#x, %#x) from image %d of the chain: %w", e.Start, e.End, e.Image, err)
		}
	}
	return nil
}

// copyDelta maps mp as anonymous memory and copies the chain's bytes into it.
func (p *thawPlan) copyDelta(t *kernel.Task, mp *imgfmt.Mapping, opts memmap.MMapOpts) error {
	opts.GrowsDown = mp.GrowsDown
	opts.NameMut = memmap.NameMutAnon
	opts.Name = mp.Name
	if _, err := t.MemoryManager().MMap(t, opts); err != nil {
		return err
	}
	const chunk = 1 << 20
	buf := make([]byte, min(chunk, mp.End-mp.Start))
	for off := uint64(0); off < mp.End-mp.Start; off += uint64(len(buf)) {
		b := buf[:min(uint64(len(buf)), mp.End-mp.Start-off)]
		if err := p.chain.chain.ReadAt(b, mp.Start+off, nil); err != nil {
			return err
		}
		if allZero(b) {
			continue
		}
		if _, err := t.MemoryManager().CopyOut(t, hostarch.Addr(mp.Start+off), b, usermem.IOOpts{IgnorePermissions: true}); err != nil {
			return fmt.Errorf("copying to %#x: %w", mp.Start+off, err)
		}
	}
	return nil
}
