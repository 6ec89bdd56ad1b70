package imgfmt

import (
	"errors"
	"fmt"
	"io"
)

// StreamDecoder reads an image from a plain io.Reader (a pipe or a socket): NewStreamDecoder reads
// and validates the head (headers and notes), then Next hands out each MapContent mapping's bytes in
// file order. Truncation of the segment data can only show up while reading it: Next and the readers
// it returns report it as a *FormatError.
//
// Typical thaw use:
//
//	d, err := imgfmt.NewStreamDecoder(r)
//	p := d.Process()
//	for {
//		i, data, err := d.Next() // data reads exactly p.Mappings[i].End-Start bytes
//		if err == io.EOF { break }
//		... copy data into the new mapping p.Mappings[i] ...
//	}
type StreamDecoder struct {
	r    io.Reader
	p    *Process
	pos  int64 // Bytes consumed from r.
	next int   // Index of the next mapping to consider.
	seg  *segmentReader
	size int64 // Total image size.
	done bool
}

// streamSource reads the head sequentially from an io.Reader.
type streamSource struct {
	r   io.Reader
	pos int64
}

func (s *streamSource) read(off, n int64, what string) ([]byte, error) {
	if off != s.pos {
		return nil, formatErrorf(off, "%s: not contiguous with what precedes it", what)
	}
	// Grow as data arrives, so a lying header on a short stream cannot make us allocate its claim.
	b := make([]byte, 0, min(n, 64<<10))
	for int64(len(b)) < n {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		k := int(min(n-int64(len(b)), int64(cap(b)-len(b))))
		m, err := io.ReadFull(s.r, b[len(b):len(b)+k])
		b = b[:len(b)+m]
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, formatErrorf(off+int64(len(b)), "%s: stream ends after %d of %d bytes", what, len(b), n)
			}
			return nil, fmt.Errorf("imgfmt: reading %s at %#x: %w", what, off+int64(len(b)), err)
		}
	}
	s.pos += n
	return b, nil
}

// NewStreamDecoder reads and validates the head of the image in r (ELF header, program headers,
// notes). It stops right after the notes; the padding up to the first data page is consumed by Next.
func NewStreamDecoder(r io.Reader) (*StreamDecoder, error) {
	src := &streamSource{r: r}
	h, err := decodeHead(src)
	if err != nil {
		return nil, err
	}
	return &StreamDecoder{r: r, p: h.p, pos: src.pos, size: h.size}, nil
}

// Process returns the decoded process. Its MapContent mappings have DataOffset set and Contents nil:
// their bytes come from Next.
func (d *StreamDecoder) Process() *Process { return d.p }

// Next discards whatever the caller left unread of the previous mapping's data, and returns the
// index in Process().Mappings of the next MapContent mapping with a reader of exactly its stored
// bytes (of a delta mapping, its stored pages; one that stores none is skipped).
// After the last one it checks that the stream ends there and returns io.EOF.
func (d *StreamDecoder) Next() (int, io.Reader, error) {
	if d.done {
		return 0, nil, io.EOF
	}
	if d.seg != nil {
		if _, err := io.Copy(io.Discard, d.seg); err != nil {
			return 0, nil, err
		}
		d.pos += d.seg.size
		d.seg = nil
	}
	for ; d.next < len(d.p.Mappings); d.next++ {
		m := &d.p.Mappings[d.next]
		if m.Kind != MapContent || m.StoredSize() == 0 {
			continue // A delta mapping may store no page (format 1.4).
		}
		if err := d.skipTo(m.DataOffset); err != nil {
			return 0, nil, err
		}
		i := d.next
		d.next++
		size := int64(m.StoredSize())
		d.seg = &segmentReader{r: d.r, left: size, size: size, off: m.DataOffset, index: i}
		return i, d.seg, nil
	}
	if err := d.skipTo(d.size); err != nil {
		return 0, nil, err
	}
	d.done = true
	var one [1]byte
	n, err := io.ReadFull(d.r, one[:])
	if n != 0 {
		return 0, nil, formatErrorf(d.pos, "data after the end of the last segment")
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, nil, fmt.Errorf("imgfmt: reading past the image end: %w", err)
	}
	return 0, nil, io.EOF
}

// skipTo discards stream bytes up to image offset off (padding between the notes and the data).
func (d *StreamDecoder) skipTo(off int64) error {
	if off < d.pos {
		return formatErrorf(off, "segment data offset precedes the stream position %#x", d.pos)
	}
	n, err := io.CopyN(io.Discard, d.r, off-d.pos)
	d.pos += n
	if err != nil {
		if errors.Is(err, io.EOF) {
			return formatErrorf(d.pos, "stream ends at %#x before the data at %#x", d.pos, off)
		}
		return fmt.Errorf("imgfmt: reading padding at %#x: %w", d.pos, err)
	}
	return nil
}

// segmentReader reads one mapping's bytes from the stream; a premature end is a *FormatError.
type segmentReader struct {
	r     io.Reader
	left  int64
	size  int64
	off   int64 // Image offset of the segment.
	index int
}

// Read implements io.Reader over the rest of the segment.
func (s *segmentReader) Read(b []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > s.left {
		b = b[:s.left]
	}
	n, err := s.r.Read(b)
	s.left -= int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) {
			if s.left == 0 {
				return n, nil
			}
			return n, formatErrorf(s.off+s.size-s.left, "PT_LOAD %d: stream ends %d bytes before the end of the segment", s.index, s.left)
		}
		return n, fmt.Errorf("imgfmt: reading PT_LOAD %d: %w", s.index, err)
	}
	return n, nil
}
