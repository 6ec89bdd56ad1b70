package imgfmt

import (
	"bytes"
	"fmt"
	"io"
)

// MakeIncremental turns p, a complete process whose MapContent mappings' Contents read its memory,
// into an incremental image against the chain c whose image 0 is the parent ref names: every
// private content mapping becomes a delta mapping that stores only the pages that differ from the
// chain's memory at the same addresses or that no image of the chain holds. A mapping that would
// store every page stays complete. It reads each mapping once, chunk by chunk.
func MakeIncremental(p *Process, c *Chain, ref *ParentRef) error {
	if len(c.Images) >= MaxChainDepth {
		return fmt.Errorf("imgfmt: the parent's chain already holds %d images, the most a chain may", len(c.Images))
	}
	p.Parent = ref
	var child, parent []byte
	for i := range p.Mappings {
		m := &p.Mappings[i]
		if m.Kind != MapContent || m.Shared || m.Delta {
			continue
		}
		size := m.End - m.Start
		if child == nil {
			child, parent = make([]byte, chunkSize), make([]byte, chunkSize)
		}
		var runs []PageRun
		var stored uint64
		for off := uint64(0); off < size; off += chunkSize {
			n := min(chunkSize, size-off)
			cb, pb := child[:n], parent[:n]
			known := make([]bool, n/PageSize)
			if err := readFullAt(m.Contents, cb, int64(off)); err != nil {
				return fmt.Errorf("imgfmt: mapping %d [%#x, %#x): reading memory at %#x: %w", i, m.Start, m.End, off, err)
			}
			if err := c.ReadAt(pb, m.Start+off, known); err != nil {
				return fmt.Errorf("imgfmt: mapping %d [%#x, %#x): %w", i, m.Start, m.End, err)
			}
			for pg := uint64(0); pg < n/PageSize; pg++ {
				a, b := cb[pg*PageSize:(pg+1)*PageSize], pb[pg*PageSize:(pg+1)*PageSize]
				if known[pg] && bytes.Equal(a, b) {
					continue
				}
				page := (off / PageSize) + pg
				stored++
				if k := len(runs); k > 0 && runs[k-1].Page+runs[k-1].Pages == page {
					runs[k-1].Pages++
					continue
				}
				runs = append(runs, PageRun{Page: page, Pages: 1})
			}
		}
		if stored == size/PageSize {
			continue
		}
		m.Delta, m.Runs = true, runs
		m.Contents = &packedPages{r: m.Contents, runs: runs}
	}
	return nil
}

// packedPages reads the pages runs list from r, concatenated: the Contents of a delta mapping
// whose memory r reads.
type packedPages struct {
	r    io.ReaderAt
	runs []PageRun
}

// ReadAt implements io.ReaderAt.
func (p *packedPages) ReadAt(b []byte, off int64) (int, error) {
	done := 0
	var at int64 // Packed offset of the current run's first page.
	for _, r := range p.runs {
		n := int64(r.Pages * PageSize)
		if off+int64(done) < at+n && done < len(b) {
			rel := off + int64(done) - at
			k := min(int64(len(b)-done), n-rel)
			if err := readFullAt(p.r, b[done:done+int(k)], int64(r.Page*PageSize)+rel); err != nil {
				return done, err
			}
			done += int(k)
		}
		at += n
		if done == len(b) {
			return done, nil
		}
	}
	return done, io.EOF
}
