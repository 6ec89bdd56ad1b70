package ckpt

import (
	"bytes"
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/safemem"
	"gvisor.dev/gvisor/pkg/sentry/memmap"
	"gvisor.dev/gvisor/pkg/sentry/pgalloc"
	"gvisor.dev/gvisor/pkg/sentry/usage"
)

// newTestMemoryFile returns a pgalloc.MemoryFile over a fresh memfd.
func newTestMemoryFile(t *testing.T) *pgalloc.MemoryFile {
	t.Helper()
	fd, err := unix.MemfdCreate("ckpt-memfile-test", 0)
	if err != nil {
		t.Fatalf("memfd_create: %v", err)
	}
	mf, err := pgalloc.NewMemoryFile(os.NewFile(uintptr(fd), "memfd"), pgalloc.MemoryFileOpts{DelayedEviction: pgalloc.DelayedEvictionDisabled})
	if err != nil {
		t.Fatalf("NewMemoryFile: %v", err)
	}
	t.Cleanup(mf.Destroy)
	return mf
}

// TestUpstreamMemFileChunks checks what memFile relies on in pgalloc (docs/upstream-gaps.md,
// "Memory file offsets of a block"): the file grows in chunks of memFileChunk bytes, each mapped
// contiguously in the sentry, so that an internal mapping's address leads back to its offset and
// the file read there holds the same bytes. A gVisor bump that changes the chunk size or the
// mappings fails here (the freeze would silently fall back to copying from the mappings).
func TestUpstreamMemFileChunks(t *testing.T) {
	mf := newTestMemoryFile(t)
	opts := pgalloc.AllocOpts{Kind: usage.Anonymous, Mode: pgalloc.AllocateUncommitted}
	small, err := mf.Allocate(3*hostarch.PageSize, opts)
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	// A chunk's worth more: the file grows by a chunk and the range spans two chunks.
	big, err := mf.Allocate(memFileChunk, opts)
	if err != nil {
		t.Fatalf("Allocate: %v", err)
	}
	if got := mf.TotalSize(); got%memFileChunk != 0 || got < 2*memFileChunk {
		t.Fatalf("memory file size %#x after allocating %v and %v: not a multiple of the %#x-byte chunk (pgalloc's chunks changed)", got, small, big, memFileChunk)
	}
	f := &memFile{mf: mf}
	chunks := map[uint64]bool{}
	for i, fr := range []memmap.FileRange{
		small,
		{Start: big.Start, End: big.Start + hostarch.PageSize},
		{Start: big.End - hostarch.PageSize, End: big.End},
	} {
		chunks[fr.Start/memFileChunk] = true
		bs, err := mf.MapInternal(fr, hostarch.Write)
		if err != nil || bs.NumBlocks() != 1 {
			t.Fatalf("MapInternal(%v): %d blocks, %v; want one block", fr, bs.NumBlocks(), err)
		}
		b := bs.Head()
		want := bytes.Repeat([]byte{byte(0x11 * (i + 1)), 0x5a}, int(fr.Length()/2))
		if _, err := safemem.Copy(b, safemem.BlockFromSafeSlice(want)); err != nil {
			t.Fatal(err)
		}
		off, ok := f.offsetOf(b.Addr(), fr.Length())
		if !ok || off != fr.Start {
			t.Fatalf("offsetOf(mapping of %v) = %#x, %v; want %#x, true", fr, off, ok, fr.Start)
		}
		got := make([]byte, fr.Length())
		if err := f.readAt(got, off); err != nil {
			t.Fatalf("readAt(%#x): %v", off, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("the memory file at %#x does not hold what its mapping does", off)
		}
	}
	if len(chunks) < 2 || len(f.bases) < 2 {
		t.Errorf("ranges in %d chunks, %d chunk mappings learned; want at least 2 of each", len(chunks), len(f.bases))
	}
	// An address that is not the memory file's is not found.
	var other [2 * hostarch.PageSize]byte
	if off, ok := f.offsetOf(uintptr(unsafe.Pointer(&other[0])), hostarch.PageSize); ok {
		t.Errorf("offsetOf(a Go array) = %#x, true; want false", off)
	}
	// Nor is a range that crosses the end of a chunk's mapping.
	last := uint64(memFileChunk - hostarch.PageSize)
	bs, err := mf.MapInternal(memmap.FileRange{Start: last, End: last + hostarch.PageSize}, hostarch.Read)
	if err != nil {
		t.Fatal(err)
	}
	if off, ok := f.offsetOf(bs.Head().Addr(), 2*hostarch.PageSize); ok {
		t.Errorf("offsetOf(a range past a chunk's end) = %#x, true; want false", off)
	}
}
