package imgfmt

import (
	"fmt"
	"io"
	"sort"
)

// Chain is an incremental image and its ancestors, child first: Images[i+1] is the parent of
// Images[i], and the last is complete (it has no parent). It answers, for any address, where the
// bytes the chain stands for are: a thaw maps or copies them, a squash writes them, a freeze
// compares against them.
type Chain struct {
	// Images are the decoded images, child first.
	Images []*Process
	// Readers read each image's file (the offsets Resolve returns are into them).
	Readers []io.ReaderAt
	// stored[i][j] is, for a delta mapping j of image i, the page index in its segment at which
	// each run starts (prefix sums of the run lengths).
	stored [][][]uint64
}

// NewChain checks that images form a chain (each names a parent but the last, at most
// MaxChainDepth images) and indexes their delta mappings. It does not check identities: the
// caller verified each parent against its child's ParentRef (CheckParent).
func NewChain(images []*Process, readers []io.ReaderAt) (*Chain, error) {
	if len(images) == 0 || len(images) != len(readers) {
		return nil, fmt.Errorf("imgfmt: a chain needs one reader per image (%d images, %d readers)", len(images), len(readers))
	}
	if len(images) > MaxChainDepth {
		return nil, formatErrorf(-1, "chain of %d images exceeds %d", len(images), MaxChainDepth)
	}
	c := &Chain{Images: images, Readers: readers, stored: make([][][]uint64, len(images))}
	for i, p := range images {
		if last := i == len(images)-1; last != (p.Parent == nil) {
			if last {
				return nil, formatErrorf(-1, "image %d of the chain names a parent, but the chain ends there", i)
			}
			return nil, formatErrorf(-1, "image %d of the chain names no parent, but image %d follows it", i, i+1)
		}
		c.stored[i] = make([][]uint64, len(p.Mappings))
		for j := range p.Mappings {
			m := &p.Mappings[j]
			if !m.Delta {
				continue
			}
			starts := make([]uint64, len(m.Runs))
			var n uint64
			for k, r := range m.Runs {
				starts[k] = n
				n += r.Pages
			}
			c.stored[i][j] = starts
		}
	}
	return c, nil
}

// CheckParent reports whether parent (size bytes, notes digest notes) is the image child's
// ParentRef names: same size, notes digest and freeze time. A mismatch means the parent file was
// replaced or rewritten since the child was frozen.
func CheckParent(child *ParentRef, parent *Process, size int64, notes [32]byte) error {
	switch {
	case child.Size != size:
		return fmt.Errorf("parent image %s is %d bytes, the child recorded %d", child.Image.Path, size, child.Size)
	case child.NotesSHA256 != notes:
		return fmt.Errorf("parent image %s is not the image the child was frozen against (notes digest differs)", child.Image.Path)
	case child.FreezeTimeNano != parent.Info.FreezeTimeNano:
		return fmt.Errorf("parent image %s was frozen at %d, the child recorded %d", child.Image.Path, parent.Info.FreezeTimeNano, child.FreezeTimeNano)
	}
	return nil
}

// SourceKind says where a range of a chain's memory comes from.
type SourceKind int

// Source kinds.
const (
	// SourceNone: no image of the chain holds bytes for the range by content (unmapped, or a
	// reference, object or shared mapping there).
	SourceNone SourceKind = iota
	// SourceZero: zero-filled memory (a MapZero mapping).
	SourceZero
	// SourceData: bytes stored in image Image at file offset Offset.
	SourceData
)

// Extent is a range of addresses whose bytes come from one place, contiguously.
type Extent struct {
	Start, End uint64
	Kind       SourceKind
	Image      int   // SourceData: the index in the chain of the image holding the bytes.
	Offset     int64 // SourceData: where Start's byte is in that image.
}

// findMapping returns the index of p's mapping containing addr, or -1 and the start of the next
// mapping above addr (or MaxUserAddress).
func findMapping(p *Process, addr uint64) (int, uint64) {
	i := sort.Search(len(p.Mappings), func(i int) bool { return p.Mappings[i].End > addr })
	if i < len(p.Mappings) && p.Mappings[i].Start <= addr {
		return i, 0
	}
	if i < len(p.Mappings) {
		return -1, p.Mappings[i].Start
	}
	return -1, MaxUserAddress
}

// resolve returns the extent at page-aligned addr, as image level of the chain sees it; the
// extent ends at or before limit.
func (c *Chain) resolve(level int, addr, limit uint64) Extent {
	p := c.Images[level]
	j, next := findMapping(p, addr)
	if j < 0 {
		return Extent{Start: addr, End: min(limit, max(next, addr+PageSize)), Kind: SourceNone}
	}
	m := &p.Mappings[j]
	end := min(limit, m.End)
	switch {
	case m.Kind == MapZero:
		return Extent{Start: addr, End: end, Kind: SourceZero}
	case m.Kind != MapContent:
		return Extent{Start: addr, End: end, Kind: SourceNone}
	case !m.Delta:
		return Extent{Start: addr, End: end, Kind: SourceData, Image: level, Offset: m.DataOffset + int64(addr-m.Start)}
	}
	page := (addr - m.Start) / PageSize
	k := sort.Search(len(m.Runs), func(k int) bool { return m.Runs[k].Page+m.Runs[k].Pages > page })
	if k < len(m.Runs) && m.Runs[k].Page <= page {
		r := m.Runs[k]
		at := c.stored[level][j][k] + page - r.Page
		return Extent{Start: addr, End: min(end, m.Start+(r.Page+r.Pages)*PageSize), Kind: SourceData, Image: level,
			Offset: m.DataOffset + int64(at*PageSize)}
	}
	if k < len(m.Runs) {
		end = min(end, m.Start+m.Runs[k].Page*PageSize)
	}
	if level+1 == len(c.Images) {
		return Extent{Start: addr, End: end, Kind: SourceNone}
	}
	return c.resolve(level+1, addr, end)
}

// Resolve returns the extents that make up [start, end) (page-aligned) in the memory image 0
// of the chain stands for, in address order, neighbours from the same place merged.
func (c *Chain) Resolve(start, end uint64) []Extent {
	var out []Extent
	for a := start; a < end; {
		e := c.resolve(0, a, end)
		if n := len(out); n > 0 {
			prev := &out[n-1]
			if prev.Kind == e.Kind && (e.Kind != SourceData || prev.Image == e.Image && prev.Offset+int64(prev.End-prev.Start) == e.Offset) {
				prev.End = e.End
				a = e.End
				continue
			}
		}
		out = append(out, e)
		a = e.End
	}
	return out
}

// ReadAt fills b with the chain's memory at addr (page-aligned, len(b) a multiple of PageSize).
// known, if not nil, receives one entry per page: false where no image holds the page (its bytes
// in b are zero then).
func (c *Chain) ReadAt(b []byte, addr uint64, known []bool) error {
	end := addr + uint64(len(b))
	for _, e := range c.Resolve(addr, end) {
		dst := b[e.Start-addr : e.End-addr]
		switch e.Kind {
		case SourceData:
			if err := readFullAt(c.Readers[e.Image], dst, e.Offset); err != nil {
				return fmt.Errorf("imgfmt: reading image %d of the chain at %#x: %w", e.Image, e.Offset, err)
			}
		default:
			clear(dst)
		}
		if known != nil {
			for pg := (e.Start - addr) / PageSize; pg < (e.End-addr)/PageSize; pg++ {
				known[pg] = e.Kind != SourceNone
			}
		}
	}
	return nil
}

// Memory returns a reader of the chain's memory [start, end) at offsets from 0, as the Contents of
// a complete mapping. Reading a page no image holds fails.
func (c *Chain) Memory(start, end uint64) io.ReaderAt {
	return &chainMemory{c: c, start: start, end: end}
}

type chainMemory struct {
	c          *Chain
	start, end uint64
}

// ReadAt implements io.ReaderAt.
func (r *chainMemory) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 || uint64(off) >= r.end-r.start {
		return 0, io.EOF
	}
	n := min(uint64(len(b)), r.end-r.start-uint64(off))
	addr := r.start + uint64(off)
	// Work in whole pages: the encoder reads aligned chunks, others are served through a bounce.
	lo, hi := addr&^(PageSize-1), (addr+n+PageSize-1)&^(PageSize-1)
	buf := make([]byte, hi-lo)
	known := make([]bool, len(buf)/PageSize)
	if err := r.c.ReadAt(buf, lo, known); err != nil {
		return 0, err
	}
	for i, k := range known {
		if !k {
			return 0, formatErrorf(-1, "no image of the chain holds the page at %#x", lo+uint64(i)*PageSize)
		}
	}
	copy(b[:n], buf[addr-lo:])
	if n < uint64(len(b)) {
		return int(n), io.EOF
	}
	return int(n), nil
}

// Squash returns the complete process the chain stands for: image 0 without a parent, each delta
// mapping a whole content mapping whose Contents read through the chain. Encode writes it. It
// fails if a delta mapping has a page no image of the chain holds.
func (c *Chain) Squash() (*Process, error) {
	q := *c.Images[0]
	q.Parent = nil
	q.Mappings = append([]Mapping(nil), q.Mappings...)
	for i := range q.Mappings {
		m := &q.Mappings[i]
		if !m.Delta {
			continue
		}
		for _, e := range c.Resolve(m.Start, m.End) {
			if e.Kind == SourceNone {
				return nil, formatErrorf(-1, "mapping %d [%#x, %#x): no image of the chain holds [%#x, %#x)", i, m.Start, m.End, e.Start, e.End)
			}
		}
		m.Delta, m.Runs = false, nil
		m.Contents = c.Memory(m.Start, m.End)
	}
	return &q, nil
}

// CheckResolvable returns an error unless every page of every delta mapping of image 0 is held by
// some image of the chain (a thaw checks this before it changes anything).
func (c *Chain) CheckResolvable() error {
	p := c.Images[0]
	for i := range p.Mappings {
		m := &p.Mappings[i]
		if !m.Delta {
			continue
		}
		for _, e := range c.Resolve(m.Start, m.End) {
			if e.Kind == SourceNone {
				return formatErrorf(-1, "mapping %d [%#x, %#x): no image of the chain holds [%#x, %#x)", i, m.Start, m.End, e.Start, e.End)
			}
		}
	}
	return nil
}
