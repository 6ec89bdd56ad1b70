package imgfmt

import (
	"bytes"
	"slices"
	"testing"
)

// recordingSink records an encoding: the bytes (holes as zeros) and the hole calls.
type recordingSink struct {
	buf   bytes.Buffer
	holes []int64
}

func (s *recordingSink) Write(b []byte) (int, error) { return s.buf.Write(b) }

func (s *recordingSink) Hole(n int64) error {
	s.holes = append(s.holes, n)
	s.buf.Write(make([]byte, n))
	return nil
}

// viewer lends data from a slice in pieces of varying sizes, and reports the pages marked in
// knownZero as zero runs without lending them.
type viewer struct {
	data      []byte
	knownZero map[int64]bool // by page index
	calls     int
}

func (v *viewer) ReadAt(p []byte, off int64) (int, error) {
	panic("the encoder read a ContentViewer with ReadAt")
}

func (v *viewer) ViewAt(off, n int64, fn func([]byte, int64) error) error {
	v.calls++
	end := off + n
	piece := int64(PageSize/2) * int64(1+v.calls%7) // odd sizes: not page multiples
	for off < end {
		if pg := off / PageSize; off%PageSize == 0 && v.knownZero[pg] {
			if err := fn(nil, PageSize); err != nil {
				return err
			}
			off += PageSize
			continue
		}
		c := min(piece, end-off)
		if next := (off/PageSize + 1) * PageSize; v.knownZero[off/PageSize+1] && next < off+c {
			c = next - off // stop before a page reported as zeros
		}
		if err := fn(v.data[off:off+c], 0); err != nil {
			return err
		}
		off += c
	}
	return nil
}

// TestContentViewerSameImage: encoding from a ContentViewer gives the very image encoding the same
// bytes from a ReaderAt does, holes included, on a seekable sink and on a stream.
func TestContentViewerSameImage(t *testing.T) {
	const pages = 700 // more than two 1 MiB chunks
	data := make([]byte, pages*PageSize)
	zero := map[int64]bool{}
	for pg := int64(0); pg < pages; pg++ {
		switch {
		case pg >= 100 && pg < 300: // a long zero run: a hole
			if pg%2 == 0 {
				zero[pg] = true
			}
		case pg%5 == 0: // short zero runs: written as zeros
			if pg%10 == 0 {
				zero[pg] = true
			}
		default:
			data[pg*PageSize+int64(pg%PageSize)] = byte(pg | 1)
		}
	}
	data[len(data)-1] = 0 // the last page stays data only if it has bytes
	build := func(contents func() any) *Process {
		p := testProcess()
		m := Mapping{Start: 0x10000000, End: 0x10000000 + uint64(len(data)), Prot: ProtRead | ProtWrite, Kind: MapContent}
		m.Contents = contents().(interface {
			ReadAt([]byte, int64) (int, error)
		})
		p.Mappings = slices.Insert(p.Mappings, 3, m)
		return p
	}
	for _, stream := range []bool{false, true} {
		plain, viewed := &recordingSink{}, &recordingSink{}
		var ps, vs Sink = plain, viewed
		if stream {
			ps, vs = &StreamSink{W: &plain.buf}, &StreamSink{W: &viewed.buf}
		}
		if err := Encode(ps, build(func() any { return bytes.NewReader(data) })); err != nil {
			t.Fatal(err)
		}
		v := &viewer{data: data, knownZero: zero}
		if err := Encode(vs, build(func() any { return v })); err != nil {
			t.Fatal(err)
		}
		if v.calls == 0 {
			t.Fatalf("stream=%t: the encoder never used ViewAt", stream)
		}
		if !bytes.Equal(plain.buf.Bytes(), viewed.buf.Bytes()) || !slices.Equal(plain.holes, viewed.holes) {
			t.Errorf("stream=%t: images differ: %d vs %d bytes, holes %v vs %v", stream, plain.buf.Len(), viewed.buf.Len(), plain.holes, viewed.holes)
		}
		if !stream && len(plain.holes) == 0 {
			t.Errorf("no hole in the image: the test does not exercise holes")
		}
	}
}
