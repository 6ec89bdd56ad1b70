package ckpt

import (
	"fmt"
	"io"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/context"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/safemem"
	"gvisor.dev/gvisor/pkg/sentry/mm"
	"gvisor.dev/gvisor/pkg/usermem"
)

// memReader reads one mapping of a task's address space for the encoder (imgfmt.Mapping.Contents),
// ignoring the mapping's protection (like /proc/pid/mem and PTRACE_PEEKDATA).
//
// Reads go through mm.CopyInTo, which hands over the sentry's own host mappings of the memory
// (safemem blocks) instead of copying page by page. For anonymous memory, whose backing is the
// sentry's memory file, a page the host never committed is zero: with skipUncommitted, each block is
// first asked with mincore(2) which pages are resident, and non-resident pages are returned as zeros
// without touching (and so committing) them. File-backed memory must not use it: a file page that is
// not in the page cache still has contents.
type memReader struct {
	ctx             context.Context
	mm              *mm.MemoryManager
	start           hostarch.Addr
	size            int64
	skipUncommitted bool
	// fromFile counts the bytes ViewAt read from the memory file by offset (for the freeze's
	// log line).
	fromFile int64
	// lent counts the bytes ViewAt lent from the sentry's mapping (freeze_capture_mem_route.go).
	lent int64
	// populated counts the lent bytes whose page tables were populated before the write
	// (freeze_capture_mem_populate.go), populateTime the time that took.
	populated    int64
	populateTime time.Duration
	// viewTime is the time spent in ViewAt (collecting the blocks, and the route), routeTime
	// the part of it in the routes (reads or populates, the encoder's scan, the writes): for the
	// freeze's log line, which tells what of a freeze the memory's writes are.
	viewTime, routeTime time.Duration
	// mf is the memory file ViewAt reads from (freeze_capture_mem_file.go), once fileLooked.
	mf         *memFile
	fileLooked bool
}

// ReadAt implements io.ReaderAt. A page that cannot be read (e.g. past the end of a mapped file,
// which would SIGBUS the program) reads as zeros.
func (r *memReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > r.size {
		return 0, fmt.Errorf("read at %d outside [0, %d): %w", off, r.size, io.ErrUnexpectedEOF)
	}
	var eof error
	if int64(len(p)) > r.size-off {
		p = p[:r.size-off]
		eof = io.EOF
	}
	done := 0
	for done < len(p) {
		addr := r.start + hostarch.Addr(off) + hostarch.Addr(done)
		ar := hostarch.AddrRange{Start: addr, End: addr + hostarch.Addr(len(p)-done)}
		w := &blockWriter{dst: p[done:], skipUncommitted: r.skipUncommitted, file: r.file()}
		n, err := r.mm.CopyInTo(r.ctx, hostarch.AddrRangeSeqOf(ar), w, usermem.IOOpts{IgnorePermissions: true})
		done += int(n)
		if err == nil {
			if n == 0 {
				return done, fmt.Errorf("reading %#x: %w", addr, io.ErrNoProgress)
			}
			continue
		}
		// Zero the unreadable page and go on with the next one.
		end := int(hostarch.Addr(addr+hostarch.Addr(n)).RoundDown() + hostarch.PageSize - r.start - hostarch.Addr(off))
		end = min(end, len(p))
		if end <= done {
			return done, fmt.Errorf("reading %#x: %w", addr+hostarch.Addr(n), err)
		}
		clear(p[done:end])
		done = end
	}
	return done, eof
}

// blockWriter is the safemem.Writer that CopyInTo fills: it copies the sentry's internal mappings
// of user memory into dst, reading blocks of the memory file by offset (freeze_capture_mem_file.go).
type blockWriter struct {
	dst             []byte
	skipUncommitted bool
	// file is the memory file blocks are read from by offset; nil to copy from the mappings.
	file *memFile
	vec  []byte // mincore result buffer, reused.
}

// WriteFromBlocks implements safemem.Writer.
func (w *blockWriter) WriteFromBlocks(srcs safemem.BlockSeq) (uint64, error) {
	var total uint64
	for !srcs.IsEmpty() && len(w.dst) > 0 {
		src := srcs.Head()
		srcs = srcs.Tail()
		if src.Len() > len(w.dst) {
			src = src.TakeFirst(len(w.dst))
		}
		n, err := w.copyBlock(src)
		total += uint64(n)
		w.dst = w.dst[n:]
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// copyBlock copies src into the front of w.dst, leaving uncommitted pages as zeros when asked to.
func (w *blockWriter) copyBlock(src safemem.Block) (int, error) {
	dst := safemem.BlockFromSafeSlice(w.dst[:src.Len()])
	if !w.skipUncommitted || src.Addr()%hostarch.PageSize != 0 || src.Len()%hostarch.PageSize != 0 {
		return w.copy(dst, src)
	}
	pages := src.Len() / hostarch.PageSize
	if cap(w.vec) < pages {
		w.vec = make([]byte, pages)
	}
	vec := w.vec[:pages]
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, src.Addr(), uintptr(src.Len()), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		return w.copy(dst, src)
	}
	done := 0
	for i := 0; i < pages; {
		j := i + 1
		for j < pages && vec[j]&1 == vec[i]&1 {
			j++
		}
		d := dst.DropFirst(i * hostarch.PageSize).TakeFirst((j - i) * hostarch.PageSize)
		if vec[i]&1 == 0 {
			n, err := safemem.Zero(d)
			done += n
			if err != nil {
				return done, err
			}
		} else {
			n, err := w.copy(d, src.DropFirst(i*hostarch.PageSize).TakeFirst((j-i)*hostarch.PageSize))
			done += n
			if err != nil {
				return done, err
			}
		}
		i = j
	}
	return done, nil
}

// copy copies src into dst (the same length): read from the memory file by offset when src is a
// mapping of it, else copied from the mapping.
func (w *blockWriter) copy(dst, src safemem.Block) (int, error) {
	if w.file != nil && src.Len() > 0 && !src.NeedSafecopy() && !dst.NeedSafecopy() {
		if off, ok := w.file.offsetOf(src.Addr(), uint64(src.Len())); ok && w.file.readAt(dst.ToSlice(), off) == nil {
			return src.Len(), nil
		}
	}
	return safemem.Copy(dst, src)
}
