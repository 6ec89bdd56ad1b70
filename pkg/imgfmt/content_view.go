package imgfmt

import (
	"fmt"
	"io"
)

// ContentViewer is an optional interface of Mapping.Contents: a source that can lend its bytes in
// place instead of copying them into the encoder's buffer (the sentry lends its own host mappings
// of a process's memory, which the sink then writes out directly: one copy fewer per byte).
type ContentViewer interface {
	// ViewAt calls fn for the bytes [off, off+n) of the contents, in order, each time either with
	// data (a slice valid only during the call, not to be modified) or with a run of zeros bytes
	// known to be zero without reading them (zeros > 0, data nil). The lengths add up to n.
	ViewAt(off, n int64, fn func(data []byte, zeros int64) error) error
}

// viewMapping writes m's bytes from a ContentViewer: like copyMapping, but without copying them
// into e.buf first.
func (e *encoder) viewMapping(v ContentViewer, m *Mapping) error {
	size := int64(m.End - m.Start)
	_, stream := e.sink.(*StreamSink)
	for off := int64(0); off < size; {
		n := min(size-off, chunkSize)
		got := int64(0)
		err := v.ViewAt(off, n, func(data []byte, zeros int64) error {
			if zeros > 0 {
				got += zeros
				if stream {
					return e.writeZeros(zeros)
				}
				e.pending += zeros
				return nil
			}
			got += int64(len(data))
			if stream {
				return e.write(data)
			}
			return e.writeSkippingZeroPages(data)
		})
		if err != nil {
			return fmt.Errorf("viewing contents at %#x: %w", off, err)
		}
		if got != n {
			return fmt.Errorf("viewing contents at %#x: got %d bytes, want %d: %w", off, got, n, io.ErrUnexpectedEOF)
		}
		off += n
	}
	return nil
}

// writeSkippingZeroPages writes b, coalescing runs of non-zero pages into single writes and turning
// zero pages into pending holes. A trailing partial page is written as data.
func (e *encoder) writeSkippingZeroPages(b []byte) error {
	for len(b) > 0 {
		if len(b) < PageSize {
			return e.write(b)
		}
		run := 0
		for run+PageSize <= len(b) && !isZeroPage(b[run:run+PageSize]) {
			run += PageSize
		}
		if run > 0 {
			if err := e.write(b[:run]); err != nil {
				return err
			}
			b = b[run:]
			continue
		}
		e.pending += PageSize
		b = b[PageSize:]
	}
	return nil
}

// writeZeros writes n zero bytes (a stream has no holes).
func (e *encoder) writeZeros(n int64) error {
	for n > 0 {
		c := min(n, int64(len(zeroChunk)))
		if err := e.write(zeroChunk[:c]); err != nil {
			return err
		}
		n -= c
	}
	return nil
}
