package ckpt

import (
	"fmt"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
	"gvisor.dev/gvisor/pkg/usermem"
	"gvisor.dev/gvisor/pkg/waiter"
)

// treeWriter writes the tree stream into the caller's file. Unlike the single-process fileSink it
// waits for a full pipe or socket without being interrupted by signals (only a kill ends the wait):
// a whole-container checkpoint should not fail because the caller's runtime got a SIGURG or a
// SIGCHLD while its reader was slow. As for fileSink, a write into a pipe whose reader left fails
// with EPIPE and sends the caller no SIGPIPE, and every write error is one of docs/abi.md's
// (sinkError): the guest-side fuzzer found a tree freeze into an unconnected socket failing with
// EDESTADDRREQ.
type treeWriter struct {
	t *kernel.Task
	f *vfs.FileDescription
	// written counts the bytes written.
	written int64
}

// treeWritePoll bounds one wait for the file to become writable.
const treeWritePoll = 50 * time.Millisecond

// Write implements io.Writer.
func (w *treeWriter) Write(b []byte) (int, error) {
	src := usermem.BytesIOSequence(b)
	total := 0
	for total < len(b) {
		n, err := w.f.Write(noSIGPIPE{w.t}, src.DropFirst(total), vfs.WriteOptions{})
		total += int(n)
		w.written += n
		if err == nil {
			if n == 0 {
				return total, fmt.Errorf("writing the tree stream: no progress: %w", linuxerr.EIO)
			}
			continue
		}
		if !linuxerr.Equals(linuxerr.ErrWouldBlock, err) {
			return total, fmt.Errorf("writing the tree stream: %w", sinkError(err))
		}
		if err := w.waitWritable(); err != nil {
			return total, err
		}
	}
	return total, nil
}

// waitWritable waits until the file is writable, or at most treeWritePoll.
func (w *treeWriter) waitWritable() error {
	e, ch := waiter.NewChannelEntry(waiter.WritableEvents)
	if err := w.f.EventRegister(&e); err != nil {
		return err
	}
	defer w.f.EventUnregister(&e)
	if w.f.Readiness(waiter.WritableEvents)&waiter.WritableEvents != 0 {
		return nil
	}
	w.t.UninterruptibleSleepStart()
	select {
	case <-ch:
	case <-time.After(treeWritePoll):
	}
	w.t.UninterruptibleSleepFinish()
	if w.t.Killed() {
		return fmt.Errorf("killed while writing the tree stream: %w", linuxerr.EINTR)
	}
	return nil
}

// Image fds (CKPT_TREE_IMAGE_FDS_SHIFT): the host's `checkpoint --format=elf` passes the helper
// one empty host file per expected image besides the stream pipe, and the images of the first
// processes are written straight into them. Through the pipe every byte was copied into the pipe,
// out of it by the host, and into the image file, with the sentry and the host taking turns on a
// full pipe; into a host file the sentry writes at the host's page-cache speed, and the stream
// only says which file holds which image (a SLOT record).

// openTreeImageFiles returns the image fds that flags name (fds 3, 4, ...; none without a
// count), each referenced: the caller drops them (dropFiles). Each must be an empty regular file
// open for writing and appear once.
func openTreeImageFiles(t *kernel.Task, flags int32) ([]*vfs.FileDescription, error) {
	n := int(uint32(flags) >> CKPT_TREE_IMAGE_FDS_SHIFT)
	if n > CKPT_TREE_IMAGE_FDS_MAX {
		return nil, linuxerr.EINVAL
	}
	files := make([]*vfs.FileDescription, 0, n)
	ok := false
	defer func() {
		if !ok {
			dropFiles(t, files)
		}
	}()
	for i := 0; i < n; i++ {
		f, err := openFile(t, int32(3+i), true /* write */)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
		st, err := f.Stat(t, vfs.StatOptions{Mask: linux.STATX_TYPE | linux.STATX_SIZE})
		if err != nil {
			return nil, err
		}
		if st.Mode&linux.S_IFMT != linux.S_IFREG || st.Size != 0 || f.StatusFlags()&linux.O_APPEND != 0 {
			t.Infof("ckpt: tree freeze: image fd %d is not an empty regular file open for writing without O_APPEND", 3+i)
			return nil, linuxerr.EINVAL
		}
		for _, g := range files[:i] {
			if g == f {
				t.Infof("ckpt: tree freeze: image fd %d is the same file as an earlier one", 3+i)
				return nil, linuxerr.EINVAL
			}
		}
	}
	ok = true
	return files, nil
}

// dropFiles drops the references on files.
func dropFiles(t *kernel.Task, files []*vfs.FileDescription) {
	for _, f := range files {
		f.DecRef(t)
	}
}

// treeImages writes the images of a tree freeze: each into the next image fd while there are
// any, the rest into the stream.
type treeImages struct {
	t     *kernel.Task
	sw    *treefmt.StreamWriter
	files []*vfs.FileDescription
	next  int
}

// write writes the image called name with encode and returns its sparse digest and size.
func (w *treeImages) write(name string, encode func(imgfmt.Sink) error) (string, int64, error) {
	if w.next < len(w.files) {
		i := w.next
		w.next++
		hs := &treefmt.HashingSink{W: &imageFileSink{t: w.t, f: w.files[i]}, Parallel: true}
		if err := encode(hs); err != nil {
			return "", 0, err
		}
		if err := w.sw.Slot(name, i); err != nil {
			return "", 0, err
		}
		sum, size := hs.Result()
		return sum, size, nil
	}
	if err := w.sw.BeginFile(name); err != nil {
		return "", 0, err
	}
	hs := &treefmt.HashingSink{W: w.sw, Parallel: true}
	if err := encode(hs); err != nil {
		return "", 0, err
	}
	sum, size := hs.Result()
	return sum, size, nil
}

// imageFileSink writes one image into an image fd from offset 0 with pwrite: a hole only moves
// the offset on (the encoder never ends an image with one, so the file's size comes out right).
type imageFileSink struct {
	t   *kernel.Task
	f   *vfs.FileDescription
	off int64
}

// Write implements io.Writer.
func (s *imageFileSink) Write(b []byte) (int, error) {
	src := usermem.BytesIOSequence(b)
	total := 0
	for total < len(b) {
		n, err := s.f.PWrite(noSIGPIPE{s.t}, src.DropFirst(total), s.off, vfs.WriteOptions{})
		total += int(n)
		s.off += n
		if err != nil {
			return total, sinkError(err)
		}
		if n == 0 {
			return total, fmt.Errorf("writing an image file: no progress: %w", linuxerr.EIO)
		}
	}
	return total, nil
}

// Hole implements imgfmt.Sink.
func (s *imageFileSink) Hole(n int64) error {
	s.off += n
	return nil
}
