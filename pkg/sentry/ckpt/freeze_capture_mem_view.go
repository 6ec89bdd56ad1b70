package ckpt

import (
	"fmt"
	"io"
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/safemem"
	"gvisor.dev/gvisor/pkg/usermem"
)

// memReader also lends memory in place (imgfmt.ContentViewer), so the encoder hands the sentry's
// own host mappings of anonymous memory straight to the image file's write instead of copying
// every byte into its buffer first. Only for anonymous memory (skipUncommitted): its blocks are
// mappings of the sentry's memory file, which cannot fault (safemem says so: NeedSafecopy is false)
// and stay mapped while the address space holds the pages. The views are collected while mm holds
// its locks and used after CopyInTo returns: writing the image file with the address space's locks
// held could deadlock if that file were mapped in it (a write invalidates its mappings). That is
// safe because nothing changes the pages meanwhile: they belong to a copy-on-write snapshot, or to a
// process that is stopped. Anything else (file-backed memory, a block that needs safecopy, an
// unreadable page) is copied as ReadAt does.

// ViewAt implements imgfmt.ContentViewer.
func (r *memReader) ViewAt(off, n int64, fn func(data []byte, zeros int64) error) error {
	if off < 0 || n < 0 || off+n > r.size {
		return fmt.Errorf("view [%d, %d) outside [0, %d): %w", off, off+n, r.size, io.ErrUnexpectedEOF)
	}
	if !r.skipUncommitted {
		return r.copyView(off, n, fn)
	}
	addr := r.start + hostarch.Addr(off)
	ar := hostarch.AddrRange{Start: addr, End: addr + hostarch.Addr(n)}
	c := &viewCollector{}
	got, err := r.mm.CopyInTo(r.ctx, hostarch.AddrRangeSeqOf(ar), c, usermem.IOOpts{IgnorePermissions: true})
	if err != nil || int64(got) != n || c.unsafe {
		return r.copyView(off, n, fn)
	}
	for _, v := range c.views {
		if err := fn(v.data, v.zeros); err != nil {
			return err
		}
	}
	r.lent += n
	return nil
}

// copyView is ViewAt by copying: it reads [off, off+n) into a buffer and lends that.
func (r *memReader) copyView(off, n int64, fn func([]byte, int64) error) error {
	if int64(cap(r.buf)) < n {
		r.buf = make([]byte, n)
	}
	b := r.buf[:n]
	if got, err := r.ReadAt(b, off); int64(got) != n {
		return fmt.Errorf("reading %d bytes at %#x: %w", n, off, err)
	}
	return fn(b, 0)
}

// memView is one piece of a view: data, or a run of zeros.
type memView struct {
	data  []byte
	zeros int64
}

// viewCollector is the safemem.Writer CopyInTo fills in ViewAt: it records the blocks as slices
// (pages the host never committed as zero runs, without touching them) instead of copying them.
type viewCollector struct {
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
		c.views = append(c.views, memView{data: src.ToSlice()})
		return
	}
	pages := src.Len() / hostarch.PageSize
	if cap(c.vec) < pages {
		c.vec = make([]byte, pages)
	}
	vec := c.vec[:pages]
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, src.Addr(), uintptr(src.Len()), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		c.views = append(c.views, memView{data: src.ToSlice()})
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
			c.views = append(c.views, memView{data: piece.ToSlice()})
		}
		i = j
	}
}
