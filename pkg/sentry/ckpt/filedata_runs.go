package ckpt

import (
	"bytes"
	"fmt"
	"io"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
)

// dataRunsChunk is how much of a file the capture reads at a time.
const dataRunsChunk = 1 << 20

// zeroPage is compared against to find all-zero pages.
var zeroPage [imgfmt.PageSize]byte

// isZeroPage reports whether page (at most a page) is all zero, with a vectorised compare.
func isZeroPage(page []byte) bool { return bytes.Equal(page, zeroPage[:len(page)]) }

// dataRuns reads [0, size) through read and returns the file's non-zero pages as runs (adjacent
// pages of one chunk coalesced; runs never cross a chunk boundary, so each run's bytes are copied
// once, never regrown): holes and all-zero pages are left out, so a sparse file stays sparse. A read
// that ends early (the file shrank) leaves the rest zero. More than imgfmt.MaxObjectData bytes of
// data is EFBIG: the image of this revision carries at most that much per object.
//
// gVisor's tmpfs (memfd, /tmp) has no SEEK_DATA/SEEK_HOLE, so holes are found by reading: a hole
// reads as zeros without allocating.
func dataRuns(read func(b []byte, off int64) (int, error), size uint64) ([]imgfmt.DataRun, error) {
	var (
		runs  []imgfmt.DataRun
		total uint64
	)
	buf := make([]byte, min(size, dataRunsChunk))
	for off := uint64(0); off < size; off += uint64(len(buf)) {
		b := buf[:min(uint64(len(buf)), size-off)]
		n, err := read(b, int64(off))
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("reading at %d: %w", off, err)
		}
		clear(b[n:])
		// Each stretch of non-zero pages of the chunk is appended in one go.
		for p := 0; p < len(b); {
			if isZeroPage(b[p:min(p+imgfmt.PageSize, len(b))]) {
				p += imgfmt.PageSize
				continue
			}
			q := p + imgfmt.PageSize
			for q < len(b) && !isZeroPage(b[q:min(q+imgfmt.PageSize, len(b))]) {
				q += imgfmt.PageSize
			}
			q = min(q, len(b))
			at := off + uint64(p)
			if total += uint64(q - p); total > imgfmt.MaxObjectData {
				return nil, fmt.Errorf("more than %d bytes of data (a known limit of this image revision): %w", imgfmt.MaxObjectData, linuxerr.EFBIG)
			}
			runs = append(runs, imgfmt.DataRun{Offset: at, Data: bytes.Clone(b[p:q])})
			p = q
		}
		if n < len(b) {
			break // The file ended early.
		}
	}
	return runs, nil
}
