package imgfmt

import (
	"fmt"
	"io"
)

// This file holds conveniences for the thaw side: reading a decoded MapContent mapping's bytes back
// from the image, either whole or as runs of non-zero pages.

// SegmentReader returns a reader of m's bytes in the image r (as decoded by Decode, which sets
// m.DataOffset). It is nil for mappings whose bytes are not stored.
func SegmentReader(r io.ReaderAt, m *Mapping) *io.SectionReader {
	if m.Kind != MapContent {
		return nil
	}
	return io.NewSectionReader(r, m.DataOffset, int64(m.End-m.Start))
}

// ContentRuns reads m's bytes from the image r in chunks of up to 1 MiB and calls fn for each run
// of consecutive pages that are not all zero, with the run's virtual address and bytes. Zero pages
// (holes or stored zeros) are skipped, so a thaw that copies into fresh anonymous memory touches only
// pages with data. data is only valid during the call. Mappings with no stored bytes yield no runs.
func ContentRuns(r io.ReaderAt, m *Mapping, fn func(addr uint64, data []byte) error) error {
	if m.Kind != MapContent {
		return nil
	}
	size := int64(m.End - m.Start)
	buf := make([]byte, min(size, chunkSize))
	for off := int64(0); off < size; {
		n := min(size-off, int64(len(buf)))
		b := buf[:n]
		if err := readFullAt(r, b, m.DataOffset+off); err != nil {
			if err == io.ErrUnexpectedEOF {
				return formatErrorf(m.DataOffset+off, "segment of mapping [%#x, %#x) is cut short", m.Start, m.End)
			}
			return fmt.Errorf("imgfmt: reading mapping [%#x, %#x) at %#x: %w", m.Start, m.End, off, err)
		}
		for p := 0; p < len(b); {
			if isZeroPage(b[p : p+PageSize]) {
				p += PageSize
				continue
			}
			q := p + PageSize
			for q < len(b) && !isZeroPage(b[q:q+PageSize]) {
				q += PageSize
			}
			if err := fn(m.Start+uint64(off)+uint64(p), b[p:q]); err != nil {
				return err
			}
			p = q
		}
		off += n
	}
	return nil
}
