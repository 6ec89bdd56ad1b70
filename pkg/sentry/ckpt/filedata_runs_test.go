package ckpt

import (
	"bytes"
	"errors"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
)

// readerOf returns a dataRuns reader over b; reads past len(b) end early (a file that shrank).
func readerOf(b []byte) func([]byte, int64) (int, error) {
	return func(p []byte, off int64) (int, error) {
		if off >= int64(len(b)) {
			return 0, nil
		}
		return copy(p, b[off:]), nil
	}
}

func TestDataRuns(t *testing.T) {
	const pg = imgfmt.PageSize
	file := make([]byte, 3*dataRunsChunk+pg+7)
	copy(file[0:], "head")          // page 0
	copy(file[pg:], "next")         // page 1: coalesced with page 0
	file[dataRunsChunk-1] = 1       // last page of the first chunk...
	file[dataRunsChunk] = 2         // ...and first of the next: two runs, split at the chunk
	copy(file[len(file)-3:], "end") // the partial last page
	runs, err := dataRuns(readerOf(file), uint64(len(file)))
	if err != nil {
		t.Fatal(err)
	}
	want := []imgfmt.DataRun{
		{Offset: 0, Data: file[:2*pg]},
		{Offset: dataRunsChunk - pg, Data: file[dataRunsChunk-pg : dataRunsChunk]},
		{Offset: dataRunsChunk, Data: file[dataRunsChunk : dataRunsChunk+pg]},
		{Offset: 3*dataRunsChunk + pg, Data: file[3*dataRunsChunk+pg:]},
	}
	if len(runs) != len(want) {
		t.Fatalf("got %d runs, want %d", len(runs), len(want))
	}
	for i := range want {
		if runs[i].Offset != want[i].Offset || !bytes.Equal(runs[i].Data, want[i].Data) {
			t.Errorf("run %d at %#x (%d bytes), want at %#x (%d bytes)", i, runs[i].Offset, len(runs[i].Data), want[i].Offset, len(want[i].Data))
		}
	}
	// The file shrank to 10 bytes after its size was taken: the rest reads as holes.
	if runs, err := dataRuns(readerOf(file[:10]), uint64(len(file))); err != nil || len(runs) != 1 || len(runs[0].Data) != pg {
		t.Errorf("shrunk file: %d runs, %v", len(runs), err)
	}
	if runs, err := dataRuns(readerOf(nil), 0); err != nil || len(runs) != 0 {
		t.Errorf("empty file: %d runs, %v", len(runs), err)
	}
}

func TestDataRunsTooLarge(t *testing.T) {
	ones := func(p []byte, off int64) (int, error) {
		for i := range p {
			p[i] = 1
		}
		return len(p), nil
	}
	if _, err := dataRuns(ones, imgfmt.MaxObjectData+imgfmt.PageSize); !errors.Is(err, linuxerr.EFBIG) {
		t.Errorf("got %v, want EFBIG", err)
	}
	if _, err := dataRuns(ones, imgfmt.MaxObjectData); err != nil {
		t.Errorf("exactly MaxObjectData: %v", err)
	}
}

// BenchmarkDataRuns scans 60 MiB of non-zero data (the CPU cost of capturing a full memfd).
func BenchmarkDataRuns(b *testing.B) {
	file := bytes.Repeat([]byte{'x'}, 60<<20)
	b.SetBytes(int64(len(file)))
	for i := 0; i < b.N; i++ {
		if _, err := dataRuns(readerOf(file), uint64(len(file))); err != nil {
			b.Fatal(err)
		}
	}
}
