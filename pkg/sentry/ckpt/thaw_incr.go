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
	if unsafe || eagerContent(mp) {
		t.Debugf("ckpt: thaw: delta mapping [%#x, %#x) %q: %d ranges in image files, copied", mp.Start, mp.End, mp.Name, files)
		return p.copyDelta(t, mp, opts)
	}
	if files > maxDeltaExtents {
		if b, off, ok := p.deltaBase(t, mp); ok {
			t.Debugf("ckpt: thaw: delta mapping [%#x, %#x) %q: %d ranges in image files, mapped from image %d and patched", mp.Start, mp.End, mp.Name, files, b)
			return p.patchDelta(t, mp, opts, extents, b, off)
		}
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

// deltaBase looks for an image of the chain below the first that holds all of mp's range as one
// complete content mapping (the parent of a process that changed scattered pages): it returns its
// index and the file offset of mp.Start's byte in it.
func (p *thawPlan) deltaBase(t *kernel.Task, mp *imgfmt.Mapping) (int, int64, bool) {
	c := p.chain.chain
	for b := 1; b < len(c.Images); b++ {
		for j := range c.Images[b].Mappings {
			m := &c.Images[b].Mappings[j]
			if m.Kind != imgfmt.MapContent || m.Delta || m.Shared || m.Start > mp.Start || m.End < mp.End {
				continue
			}
			off := m.DataOffset + int64(mp.Start-m.Start)
			if checkMappable(t, p.chain.files[b], uint64(off), mp.End-mp.Start) != nil {
				return 0, 0, false
			}
			return b, off, true
		}
	}
	return 0, 0, false
}

// patchDelta maps all of mp lazily from image b at file offset off, as one range (one VMA), and
// copies over it the bytes that the chain holds elsewhere: the pages changed since image b,
// written into the private mapping (copy on write, so only those pages are copied). A delta
// mapping whose changes are scattered over many ranges thaws this way instead of by copying all
// of it.
func (p *thawPlan) patchDelta(t *kernel.Task, mp *imgfmt.Mapping, opts memmap.MMapOpts, extents []imgfmt.Extent, b int, off int64) error {
	f := p.chain.files[b]
	o := opts
	o.Offset = uint64(off)
	o.Name = mp.Name
	if err := f.ConfigureMMap(t, &o); err != nil {
		return fmt.Errorf("configuring the mapping of image %d of the chain: %w", b, err)
	}
	_, err := t.MemoryManager().MMap(t, o)
	if o.MappingIdentity != nil {
		o.MappingIdentity.DecRef(t)
	}
	if err != nil {
		return fmt.Errorf("[%#x, %#x) from image %d of the chain: %w", mp.Start, mp.End, b, err)
	}
	const chunk = 1 << 20
	var buf []byte
	for _, e := range extents {
		if e.Kind == imgfmt.SourceData && e.Image == b && e.Offset == off+int64(e.Start-mp.Start) {
			continue // Already there.
		}
		for a := e.Start; a < e.End; a += chunk {
			n := min(chunk, e.End-a)
			if uint64(cap(buf)) < n {
				buf = make([]byte, n)
			}
			bb := buf[:n]
			if err := p.chain.chain.ReadAt(bb, a, nil); err != nil {
				return err
			}
			if _, err := t.MemoryManager().CopyOut(t, hostarch.Addr(a), bb, usermem.IOOpts{IgnorePermissions: true}); err != nil {
				return fmt.Errorf("patching %#x: %w", a, err)
			}
		}
	}
	return nil
}
