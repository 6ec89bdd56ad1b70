package ckpt

import (
	"sync"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/context"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/sentry/memmap"
	"gvisor.dev/gvisor/pkg/sentry/pgalloc"
)

// Memory is read for an image from the sentry's memory file with pread(2), not through the
// sentry's own mappings of it. The bytes are the same, but a mapping of the memory file in the
// sentry is populated page by page on first touch: reading 256 MiB through it costs 65,536 host
// page faults (the zero-page scan, then the write's copy), which made the write of an image 3-17
// times slower than a plain host copy of the same bytes. pread copies from the host's page cache
// without touching any page table, into a buffer that then stays in the CPU's cache for the zero
// scan and the write: two copies, as `cat` does (docs/notes-pause.md, "The writer").
//
// gVisor hands out memory as blocks of its mappings (mm.CopyInTo), not as file offsets: the one
// exported route to offsets, mm.Pin, breaks copy-on-write on the whole range (it would copy every
// page of a snapshot). memFile maps a block's address back to its offset in the memory file from
// the exported MemoryFile.MapInternal and TotalSize, and checks every answer with MapInternal
// (docs/upstream-gaps.md, "Memory file offsets of a block").

// memFileChunk is the size of one chunk of a pgalloc.MemoryFile: the file grows a chunk at a time
// and each chunk is one contiguous mapping in the sentry. It is internal to pgalloc; a different
// size makes lookups fail their check (the write falls back to the mappings) and fails
// TestUpstreamMemFileChunks.
const memFileChunk = 1 << 30

// memFile maps addresses of the sentry's internal mappings of one MemoryFile back to file offsets
// and reads the file at them.
type memFile struct {
	mf *pgalloc.MemoryFile

	mu sync.Mutex
	// bases holds the sentry address of each chunk's mapping, by chunk index; chunks never move
	// and are never unmapped while the MemoryFile lives, so the list only grows.
	bases []uintptr
}

// memFiles holds the memFile of each MemoryFile seen, for the life of the process (a sandbox
// has one or two: the kernel's and, with some platforms, a second).
var memFiles = memFileRegistry{m: make(map[*pgalloc.MemoryFile]*memFile)}

// memFileRegistry is the type of memFiles.
type memFileRegistry struct {
	mu sync.Mutex
	// +checklocks:mu
	m map[*pgalloc.MemoryFile]*memFile
}

// memFileOf returns the memFile of ctx's memory file (the kernel's, which backs anonymous memory),
// or nil if ctx has none or it has no host file.
func memFileOf(ctx context.Context) *memFile {
	mf := pgalloc.MemoryFileFromContext(ctx)
	if mf == nil || mf.File() == nil {
		return nil
	}
	memFiles.mu.Lock()
	defer memFiles.mu.Unlock()
	f := memFiles.m[mf]
	if f == nil {
		f = &memFile{mf: mf}
		memFiles.m[mf] = f
	}
	return f
}

// offsetOf returns the file offset that the n > 0 bytes at sentry address addr map, if they are
// one contiguous range of f's memory file.
//
// Preconditions: a reference is held on the pages (the address came from mm.CopyInTo, whose
// address space still maps them).
func (f *memFile) offsetOf(addr uintptr, n uint64) (uint64, bool) {
	f.mu.Lock()
	i, ok := f.findLocked(addr, n)
	if !ok && f.refreshLocked() {
		i, ok = f.findLocked(addr, n)
	}
	var base uintptr
	if ok {
		base = f.bases[i]
	}
	f.mu.Unlock()
	if !ok {
		return 0, false
	}
	off := uint64(i)*memFileChunk + uint64(addr-base)
	// Check the answer: the file range must map back to exactly these addresses.
	if off+n > f.mf.TotalSize() {
		return 0, false
	}
	bs, err := f.mf.MapInternal(memmap.FileRange{Start: off, End: off + n}, hostarch.Read)
	if err != nil || bs.NumBlocks() != 1 || bs.Head().Addr() != addr || uint64(bs.Head().Len()) != n {
		return 0, false
	}
	return off, true
}

// findLocked returns the index of the chunk whose mapping holds [addr, addr+n).
func (f *memFile) findLocked(addr uintptr, n uint64) (int, bool) {
	for i, b := range f.bases {
		if addr >= b && uint64(addr-b) < memFileChunk && n <= memFileChunk-uint64(addr-b) {
			return i, true
		}
	}
	return 0, false
}

// refreshLocked learns the mappings of chunks added since the last call, and reports whether it
// found any.
func (f *memFile) refreshLocked() bool {
	total := f.mf.TotalSize()
	found := false
	for i := uint64(len(f.bases)); (i+1)*memFileChunk <= total; i++ {
		// Only the address is computed; the page is not touched.
		bs, err := f.mf.MapInternal(memmap.FileRange{Start: i * memFileChunk, End: i*memFileChunk + hostarch.PageSize}, hostarch.Read)
		if err != nil || bs.NumBlocks() != 1 {
			break
		}
		f.bases = append(f.bases, bs.Head().Addr())
		found = true
	}
	return found
}

// readAt fills dst from the memory file at off.
//
// Preconditions: a reference is held on the pages.
func (f *memFile) readAt(dst []byte, off uint64) error {
	fd, err := f.mf.DataFD(memmap.FileRange{Start: off, End: off + uint64(len(dst))})
	if err != nil {
		return err
	}
	for len(dst) > 0 {
		n, err := unix.Pread(fd, dst, int64(off))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return unix.EIO // within the file's size: cannot happen
		}
		dst = dst[n:]
		off += uint64(n)
	}
	return nil
}
