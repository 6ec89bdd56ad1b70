package ckpt

import (
	"errors"
	"fmt"
	"io"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/sentry/fsimpl/tmpfs"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
	"gvisor.dev/gvisor/pkg/usermem"
	"gvisor.dev/gvisor/pkg/waiter"
)

// The image is mapped MAP_PRIVATE straight from its file, as DragonFly does, so a thaw costs the
// same for any image size and pages load on first touch. A non-seekable image (a pipe or a socket:
// `cat img | checkpt -r -`, migration over a socket) is first copied sequentially into an anonymous
// memory file (a memfd) and then thawed from there exactly like a file: the whole stream is read
// and validated before the caller is touched, so a truncated stream fails with EINVAL and the
// caller keeps running. The memfd's pages are the "anonymous memory" the stream is read into.

// memfdImageName names the memory file a streamed image is copied into (/proc/pid/maps shows
// "/memfd:runsc-ckpt-image (deleted)" for its mappings; a freeze stores such mappings by content).
const memfdImageName = "memfd:runsc-ckpt-image"

// imageSource is the image file a thaw maps from; it holds a reference on file.
type imageSource struct {
	file *vfs.FileDescription
	// streamed is set when file is the memfd a non-seekable image was copied into.
	streamed bool
}

func (s *imageSource) release(t *kernel.Task) {
	if s.file != nil {
		s.file.DecRef(t)
		s.file = nil
	}
}

// fileReaderAt reads a file description with pread.
type fileReaderAt struct {
	t *kernel.Task
	f *vfs.FileDescription
}

// ReadAt implements io.ReaderAt.
func (r fileReaderAt) ReadAt(b []byte, off int64) (int, error) {
	var done int
	for done < len(b) {
		n, err := r.f.PRead(r.t, usermem.BytesIOSequence(b[done:]), off+int64(done), vfs.ReadOptions{})
		done += int(n)
		if err != nil {
			return done, err
		}
		if n == 0 {
			return done, io.EOF
		}
	}
	return done, nil
}

// fileReader reads a file description sequentially, blocking (interruptibly) while a pipe or
// socket has no data yet.
type fileReader struct {
	t *kernel.Task
	f *vfs.FileDescription
}

// Read implements io.Reader.
//
// After a read that would block it waits for readability as readyWaiter says (a retry once
// registered, then a blocking wait, interruptible, before each further try).
func (r fileReader) Read(b []byte) (int, error) {
	ready := readyWaiter{f: r.f, mask: waiter.ReadableEvents} // file_ready.go
	defer ready.release()
	for {
		n, err := r.f.Read(r.t, usermem.BytesIOSequence(b), vfs.ReadOptions{})
		if n > 0 {
			return int(n), nil
		}
		if err == nil {
			return 0, io.EOF
		}
		if !linuxerr.Equals(linuxerr.ErrWouldBlock, err) {
			return 0, err
		}
		if err := ready.wait(r.t.Block); err != nil {
			return 0, err
		}
	}
}

// openImage decodes and validates the image in f (headers and notes; segment data stays in the
// file). A non-seekable f, or one whose filesystem cannot mmap it, is copied into a memfd first.
//
// Preconditions: running on t's task goroutine.
func openImage(t *kernel.Task, f *vfs.FileDescription) (*imageSource, *imgfmt.Process, error) {
	src := &imageSource{file: f}
	if _, err := f.Seek(t, 0, linux.SEEK_CUR); err != nil {
		mf, err := copyToMemfd(t, fileReader{t: t, f: f})
		if err != nil {
			return nil, nil, err
		}
		src = &imageSource{file: mf, streamed: true}
	} else if why := imageWritableByOthers(t, f); why != "" { // thaw_image_guard.go
		t.Debugf("ckpt: thaw: the image %s: copying it into memory", why)
		if src, err = copyImageFile(t, f); err != nil {
			return nil, nil, err
		}
	} else if err := checkMappable(t, f, 0, hostarch.PageSize); err != nil {
		// A seekable file whose filesystem cannot mmap it: read it into memory like a stream.
		t.Debugf("ckpt: thaw: the image cannot be mapped (%v), copying it into memory", err)
		st, err := f.Stat(t, vfs.StatOptions{Mask: linux.STATX_SIZE})
		if err != nil {
			return nil, nil, fmt.Errorf("stat of the image: %w", err)
		}
		mf, err := copyToMemfd(t, io.NewSectionReader(fileReaderAt{t: t, f: f}, 0, int64(st.Size)))
		if err != nil {
			return nil, nil, err
		}
		src = &imageSource{file: mf, streamed: true}
	} else {
		f.IncRef()
	}
	st, err := src.file.Stat(t, vfs.StatOptions{Mask: linux.STATX_SIZE})
	if err != nil {
		src.release(t)
		return nil, nil, fmt.Errorf("stat of the image: %w", err)
	}
	p, err := imgfmt.Decode(fileReaderAt{t: t, f: src.file}, int64(st.Size))
	if err != nil {
		src.release(t)
		return nil, nil, fmt.Errorf("decoding the image: %w", err)
	}
	return src, p, nil
}

// maxStreamedImage bounds a streamed image (it is held in memory until the thaw maps it).
const maxStreamedImage = 64 << 30

// copyToMemfd copies the whole stream r into a new memfd and returns it. The stream is checked
// with imgfmt's stream decoder on the way, so a malformed or truncated stream is a *FormatError
// before anything else happens.
func copyToMemfd(t *kernel.Task, r io.Reader) (*vfs.FileDescription, error) {
	mf, err := tmpfs.NewMemfd(t, t.Credentials(), t.Kernel().ShmMount(), false, memfdImageName)
	if err != nil {
		return nil, fmt.Errorf("creating the memfd for a streamed image: %w", err)
	}
	w := &memfdWriter{t: t, f: mf}
	tee := io.TeeReader(r, w)
	d, err := imgfmt.NewStreamDecoder(tee)
	buf := make([]byte, 1<<20)
	if err == nil {
		for {
			_, data, nerr := d.Next()
			if nerr == io.EOF {
				break
			}
			if nerr != nil {
				err = nerr
				break
			}
			// Reading the segment through the decoder's reader copies it into the memfd.
			if err = drain(data, buf); err != nil {
				break
			}
		}
	}
	if err == nil && w.err != nil {
		err = w.err
	}
	if err == nil {
		// Trailing all-zero pages were skipped: give the memfd the stream's full size.
		err = mf.SetStat(t, vfs.SetStatOptions{Stat: linux.Statx{Mask: linux.STATX_SIZE, Size: uint64(w.off)}})
	}
	if err != nil {
		mf.DecRef(t)
		if errors.Is(err, errStreamTooLarge) {
			return nil, linuxerr.EFBIG
		}
		return nil, fmt.Errorf("reading the streamed image: %w", err)
	}
	return mf, nil
}

var errStreamTooLarge = errors.New("streamed image too large")

// memfdWriter appends to a memfd. Holes of the image arrive as zero bytes; they are written too
// (the stream gives no way to tell a hole from data without scanning, and the memfd is sparse only
// where nothing is written).
type memfdWriter struct {
	t   *kernel.Task
	f   *vfs.FileDescription
	off int64
	err error
}

// Write implements io.Writer.
func (w *memfdWriter) Write(b []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.off+int64(len(b)) > maxStreamedImage {
		w.err = errStreamTooLarge
		return 0, w.err
	}
	// Skip all-zero pages (the memfd reads zeros there without holding memory); write each run of
	// other pages with one pwrite.
	run := -1 // Start of the current run of non-zero pages in b, or -1.
	flush := func(end int) error {
		if run < 0 {
			return nil
		}
		_, err := w.f.PWrite(w.t, usermem.BytesIOSequence(b[run:end]), w.off+int64(run), vfs.WriteOptions{})
		run = -1
		return err
	}
	for done := 0; done < len(b); {
		n := min(len(b)-done, 4096-int((w.off+int64(done))%4096))
		if allZero(b[done : done+n]) {
			if err := flush(done); err != nil {
				w.err = err
				return done, err
			}
		} else if run < 0 {
			run = done
		}
		done += n
	}
	if err := flush(len(b)); err != nil {
		w.err = err
		return 0, err
	}
	w.off += int64(len(b))
	return len(b), nil
}

// drain reads r to its end through buf.
func drain(r io.Reader, buf []byte) error {
	for {
		_, err := io.ReadFull(r, buf)
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return nil
		default:
			return err
		}
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
