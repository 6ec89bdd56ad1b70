package ckpt

import (
	"fmt"
	"io"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/safemem"
	"gvisor.dev/gvisor/pkg/usermem"
)

// memReader also serves views (imgfmt.ContentViewer) of anonymous memory, so the encoder need not
// copy it into its own buffer. The blocks are collected while mm holds its locks (mm.CopyInTo) and
// read after CopyInTo returns: writing the image file with the address space's locks held could
// deadlock if that file were mapped in it (a write invalidates its mappings). That is safe because
// nothing changes the pages meanwhile: they belong to a copy-on-write snapshot, or to a process
// that is stopped. Pages the host never committed are zero runs, never read. The resident runs
// reach the encoder, which scans them for zero pages and writes them, by one of two routes
// (freeze_capture_mem_route.go picks by measured cost): read from the memory file by offset
// (freeze_capture_mem_file.go: pread, no page faults in the sentry) into one buffer, a block
// outside the memory file copied from the sentry's mapping into the same buffer; or lent as the
// sentry's mapping of them, each run's page tables populated first
// (freeze_capture_mem_populate.go). A block that needs safecopy or an unreadable page makes the whole view
// a copy as ReadAt does.

// ViewAt implements imgfmt.ContentViewer.
func (r *memReader) ViewAt(off, n int64, fn func(data []byte, zeros int64) error) error {
	if off < 0 || n < 0 || off+n > r.size {
		return fmt.Errorf("view [%d, %d) outside [0, %d): %w", off, off+n, r.size, io.ErrUnexpectedEOF)
	}
	if !r.skipUncommitted {
		return r.copyView(off, n, fn)
	}
	entered := time.Now()
	defer func() { r.viewTime += time.Since(entered) }()
	addr := r.start + hostarch.Addr(off)
	ar := hostarch.AddrRange{Start: addr, End: addr + hostarch.Addr(n)}
	c := &viewCollector{file: r.file()}
	got, err := r.mm.CopyInTo(r.ctx, hostarch.AddrRangeSeqOf(ar), c, usermem.IOOpts{IgnorePermissions: true})
	if err != nil || int64(got) != n || c.unsafe {
		return r.copyView(off, n, fn)
	}
	need := 0
	for _, v := range c.views {
		need += len(v.data)
	}
	route, measure := viewRoutes.pick(need) // freeze_capture_mem_route.go
	began := time.Now()
	if route == routeLend {
		err = r.lendViews(c.views, fn)
	} else {
		err = r.preadViews(c.views, need, fn)
	}
	took := time.Since(began)
	r.routeTime += took
	if err == nil && measure {
		viewRoutes.record(route, need, took)
	}
	return err
}

// lendViews hands views to fn as they are: the data as the sentry's mapping of it (runs adjacent
// in that mapping as one), zero runs as zeros.
func (r *memReader) lendViews(views []memView, fn func(data []byte, zeros int64) error) error {
	var run []byte
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		b := run
		run = nil
		r.lent += int64(len(b))
		began := time.Now()
		if populateRead(b) { // freeze_capture_mem_populate.go
			r.populated += int64(len(b))
			r.populateTime += time.Since(began)
		}
		return fn(b, 0)
	}
	return walkViews(views, fn, flush, func(v memView) error {
		if len(v.data) == 0 {
			return nil
		}
		if len(run) > 0 && adjacent(run, v.data) {
			run = unsafe.Slice(&run[0], len(run)+len(v.data))
			return nil
		}
		if err := flush(); err != nil {
			return err
		}
		run = v.data
		return nil
	})
}

// walkViews passes each data view to add and each zero run to fn, calling flush before a zero
// run and at the end, so that what add gathered goes out in order.
func walkViews(views []memView, fn func(data []byte, zeros int64) error, flush func() error, add func(memView) error) error {
	for _, v := range views {
		if v.zeros == 0 {
			if err := add(v); err != nil {
				return err
			}
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		if err := fn(nil, v.zeros); err != nil {
			return err
		}
	}
	return flush()
}

// adjacent reports whether b starts where a ends in memory.
func adjacent(a, b []byte) bool {
	return uintptr(unsafe.Pointer(&a[0]))+uintptr(len(a)) == uintptr(unsafe.Pointer(&b[0]))
}

// preadViews reads the views' data into one buffer of need bytes (by offset from the memory file
// where it is there) and hands it to fn, zero runs as zeros. The buffer holds only the data, not
// the zero runs: a stack or heap VMA is mostly pages never touched, and a buffer of the whole view
// (zeroed by make) cost more than the image's data in a container of many small processes (CPU
// profile, 16 × 1 MiB: 17 % of the freeze).
func (r *memReader) preadViews(views []memView, need int, fn func(data []byte, zeros int64) error) error {
	file := r.file()
	whole := getViewBuf(need)
	defer putViewBuf(whole)
	buf, used := whole, 0
	flush := func() error {
		if used == 0 {
			return nil
		}
		b := buf[:used]
		buf, used = buf[used:], 0
		return fn(b, 0)
	}
	return walkViews(views, fn, flush, func(v memView) error {
		dst := buf[used : used+len(v.data)]
		if v.inFile && file.readAt(dst, v.fileOff) == nil {
			r.fromFile += int64(len(dst))
		} else {
			copy(dst, v.data)
		}
		used += len(dst)
		return nil
	})
}

// file returns the memory file the reader's blocks are looked up in, nil if there is none.
func (r *memReader) file() *memFile {
	if !r.fileLooked {
		r.mf, r.fileLooked = memFileOf(r.ctx), true
	}
	return r.mf
}

// copyView is ViewAt by copying: it reads [off, off+n) into a buffer and lends that.
func (r *memReader) copyView(off, n int64, fn func([]byte, int64) error) error {
	b := getViewBuf(int(n))
	defer putViewBuf(b)
	if got, err := r.ReadAt(b, off); int64(got) != n {
		return fmt.Errorf("reading %d bytes at %#x: %w", n, off, err)
	}
	return fn(b, 0)
}

// viewBufs holds the buffers ViewAt and copyView fill (the encoder asks for at most a 1 MiB chunk
// at a time), shared by every memReader of every image being written. A buffer per reader, as
// before, allocated up to 1 MiB for each mapping of each image: megabytes of new heap right after
// a snapshot. In a Go execution trace of the sentry (docs/notes-pause.md, "Where the threads'
// stops go: the sentry's Go scheduler") such an allocation started a garbage collection whose
// stop-the-world waited 11 ms for a thread's first copy-on-write copy (a 2 MiB runtime.memmove
// in gVisor's fault handler, which the runtime cannot preempt), holding every goroutine of the
// sandbox meanwhile. The fewer bytes a freeze allocates, the less likely a collection starts then.
var viewBufs sync.Pool

// getViewBuf returns a buffer of n bytes from viewBufs, or a new one. A pooled buffer too small for
// n goes back to the pool.
func getViewBuf(n int) []byte {
	p, ok := viewBufs.Get().(*[]byte)
	if ok && cap(*p) >= n {
		return (*p)[:n]
	}
	if ok {
		viewBufs.Put(p)
	}
	return make([]byte, n, max(n, viewBufSize))
}

// putViewBuf returns b to viewBufs; a buffer smaller than viewBufSize is dropped.
func putViewBuf(b []byte) {
	if cap(b) >= viewBufSize {
		viewBufs.Put(&b)
	}
}

// viewBufSize is the size of a pooled view buffer: the encoder's chunk.
const viewBufSize = 1 << 20

// memView is one piece of a view: data (the sentry's mapping of it, and its offset in the memory
// file if inFile), or a run of zeros.
type memView struct {
	data    []byte
	zeros   int64
	inFile  bool
	fileOff uint64
}

// viewCollector is the safemem.Writer CopyInTo fills in ViewAt: it records the blocks as slices and
// memory file offsets (pages the host never committed as zero runs, without touching them)
// instead of copying them.
type viewCollector struct {
	// file is where blocks are looked up; nil to record slices only.
	file  *memFile
	views []memView
	// unsafe is set when a block needs safecopy: ViewAt then copies instead.
	unsafe bool
	vec    []byte // mincore result buffer, reused.
}

// WriteFromBlocks implements safemem.Writer.
func (c *viewCollector) WriteFromBlocks(srcs safemem.BlockSeq) (uint64, error) {
	var total uint64
	for !srcs.IsEmpty() {
		src := srcs.Head()
		srcs = srcs.Tail()
		total += uint64(src.Len())
		if src.NeedSafecopy() {
			c.unsafe = true
			continue
		}
		c.addBlock(src)
	}
	return total, nil
}

// addBlock records src, split into resident data and non-resident zero runs when it is page
// aligned.
func (c *viewCollector) addBlock(src safemem.Block) {
	if src.Addr()%hostarch.PageSize != 0 || src.Len()%hostarch.PageSize != 0 {
		c.addData(src)
		return
	}
	pages := src.Len() / hostarch.PageSize
	if cap(c.vec) < pages {
		c.vec = make([]byte, pages)
	}
	vec := c.vec[:pages]
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, src.Addr(), uintptr(src.Len()), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		c.addData(src)
		return
	}
	for i := 0; i < pages; {
		j := i + 1
		for j < pages && vec[j]&1 == vec[i]&1 {
			j++
		}
		piece := src.DropFirst(i * hostarch.PageSize).TakeFirst((j - i) * hostarch.PageSize)
		if vec[i]&1 == 0 {
			c.views = append(c.views, memView{zeros: int64(piece.Len())})
		} else {
			c.addData(piece)
		}
		i = j
	}
}

// addData records a block of data, with its memory file offset if it has one.
func (c *viewCollector) addData(b safemem.Block) {
	v := memView{data: b.ToSlice()}
	if c.file != nil && b.Len() > 0 {
		v.fileOff, v.inFile = c.file.offsetOf(b.Addr(), uint64(b.Len()))
	}
	c.views = append(c.views, v)
}
