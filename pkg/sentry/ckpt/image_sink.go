package ckpt

import (
	"fmt"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/context"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/log"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
	"gvisor.dev/gvisor/pkg/usermem"
	"gvisor.dev/gvisor/pkg/waiter"
)

// fileSink is the imgfmt.Sink that writes an image into a file description inside the sandbox,
// starting at its current offset (as DragonFly does) and advancing it. Holes are skipped by seeking
// on a seekable file, by growing the file on an O_APPEND one (where a write ignores the offset), and
// written as zeros on a pipe or socket. Writes that would block (a pipe whose reader is slow) wait
// interruptibly, like write(2), when the sink runs on a task goroutine; a background writer (no
// task) waits until the file is writable, polling, and is ended only by a failed write.
type fileSink struct {
	// ctx is the context of every file operation: the writing task, or a background context.
	ctx context.Context
	// t is the writing task, whose signals interrupt a wait for a full pipe; nil for a
	// background writer.
	t    *kernel.Task
	file *vfs.FileDescription
	// mode says how holes are made; fixed when the sink is made.
	mode holeMode
	// written counts the bytes the image occupies so far (holes included).
	written int64
	// writes counts the calls to Write, writeTime the time spent in them (for the freeze's log
	// line).
	writes    int64
	writeTime time.Duration
	// start is the file offset where the image starts (seekable files only).
	start int64
	// limit is the largest write the file takes at once (a datagram or seqpacket socket).
	limit messageLimit
}

// undoIfFailed undoes the sink's writes (undo) if err, the outcome of writing an image into it, is
// not nil and the file is seekable: a failed freeze leaves no partial image behind. It returns err.
func (s *fileSink) undoIfFailed(err error) error {
	if err != nil && s.mode == holeSeek {
		s.undo()
	}
	return err
}

// undo removes what the sink wrote to a seekable, non-append file: the file is truncated back to
// the image's start if it extends past it, and the offset is set back there. Errors are logged;
// the freeze has failed already.
func (s *fileSink) undo() {
	st, err := s.file.Stat(s.ctx, vfs.StatOptions{Mask: linux.STATX_SIZE | linux.STATX_TYPE})
	if err == nil && st.Mode&linux.S_IFMT == linux.S_IFREG && int64(st.Size) > s.start {
		err = s.file.SetStat(s.ctx, vfs.SetStatOptions{Stat: linux.Statx{Mask: linux.STATX_SIZE, Size: uint64(s.start)}})
	}
	if err != nil {
		log.Warningf("ckpt: removing a partial image: %v", err)
	}
	if _, err := s.file.Seek(s.ctx, s.start, linux.SEEK_SET); err != nil {
		log.Warningf("ckpt: restoring the offset after a failed freeze: %v", err)
	}
}

// noSIGPIPE is the context image writes run in: the task's, except that a pipe write that fails with
// EPIPE finds no signal function in it and so sends no SIGPIPE. A freeze into a pipe whose reader
// went away fails with EPIPE and the process keeps running (as DragonFly's freeze, and as a write
// into a socket whose peer closed already behaves here), instead of being killed mid-freeze.
type noSIGPIPE struct{ context.Context }

// Value implements context.Context.
func (c noSIGPIPE) Value(key any) any {
	if key == linux.CtxSignalNoInfoFunc {
		return nil
	}
	return c.Context.Value(key)
}

// holeMode is how a fileSink makes a hole.
type holeMode int

const (
	holeSeek   holeMode = iota // lseek forward; the next write fills the file up to there.
	holeGrow                   // O_APPEND: ftruncate the file longer.
	holeZeroes                 // not seekable: write zero bytes.
)

// newFileSink returns a sink writing at file's current offset.
//
// Preconditions: running on t's task goroutine; file is open for writing.
func newFileSink(t *kernel.Task, file *vfs.FileDescription) *fileSink {
	return newSink(t, t, file)
}

// newBackgroundSink returns a sink writing at file's current offset from a goroutine that is no
// task's, with ctx as the context of the file operations.
func newBackgroundSink(ctx context.Context, file *vfs.FileDescription) *fileSink {
	return newSink(ctx, nil, file)
}

// newSink returns a sink writing at file's current offset; t is nil for a background writer.
func newSink(ctx context.Context, t *kernel.Task, file *vfs.FileDescription) *fileSink {
	s := &fileSink{ctx: ctx, t: t, file: file, mode: holeZeroes}
	if off, err := file.Seek(ctx, 0, linux.SEEK_CUR); err == nil {
		s.start = off
		s.mode = holeSeek
		if file.StatusFlags()&linux.O_APPEND != 0 {
			s.mode = holeGrow
		}
	}
	return s
}

// Write implements io.Writer.
func (s *fileSink) Write(b []byte) (int, error) {
	s.writes++
	began := time.Now()
	defer func() { s.writeTime += time.Since(began) }()
	src := usermem.BytesIOSequence(b)
	total := 0
	ready := readyWaiter{f: s.file, mask: waiter.WritableEvents} // file_ready.go
	defer ready.release()
	for len(b) > total {
		piece := s.limit.clip(src.DropFirst(total))
		n, err := s.file.Write(noSIGPIPE{s.ctx}, piece, vfs.WriteOptions{})
		total += int(n)
		s.written += n
		if err == nil {
			if n == 0 {
				return total, fmt.Errorf("writing the image: no progress: %w", linuxerr.EIO)
			}
			continue
		}
		if n == 0 && s.limit.shrink(err, piece.NumBytes()) {
			continue // image_sink_msgsize.go
		}
		if !linuxerr.Equals(linuxerr.ErrWouldBlock, err) || s.file.StatusFlags()&linux.O_NONBLOCK != 0 {
			return total, sinkError(err) // image_sink_errno.go
		}
		if err := ready.wait(s.waitWritable); err != nil {
			return total, err
		}
	}
	return total, nil
}

// Hole implements imgfmt.Sink.
func (s *fileSink) Hole(n int64) error {
	switch s.mode {
	case holeSeek:
		if _, err := s.file.Seek(s.ctx, n, linux.SEEK_CUR); err != nil {
			return fmt.Errorf("seeking over a %d-byte hole: %w", n, err)
		}
	case holeGrow:
		st, err := s.file.Stat(s.ctx, vfs.StatOptions{Mask: linux.STATX_SIZE})
		if err != nil {
			return fmt.Errorf("stat for a %d-byte hole: %w", n, err)
		}
		if err := s.file.SetStat(s.ctx, vfs.SetStatOptions{Stat: linux.Statx{Mask: linux.STATX_SIZE, Size: st.Size + uint64(n)}}); err != nil {
			return fmt.Errorf("growing the file by a %d-byte hole: %w", n, err)
		}
	default:
		return (&imgfmt.StreamSink{W: writerFunc(s.Write)}).Hole(n)
	}
	s.written += n
	return nil
}

// backgroundPoll bounds one wait of a background writer for a full pipe or socket.
const backgroundPoll = 50 * time.Millisecond

// waitWritable waits for the file to become writable after a write would have blocked: on the
// task, interruptibly (EINTR); in the background, until the readiness notification ch fires or
// backgroundPoll has passed.
func (s *fileSink) waitWritable(ch <-chan struct{}) error {
	if s.t != nil {
		if err := s.t.Block(ch); err != nil {
			return fmt.Errorf("waiting to write the image: %w", linuxerr.EINTR)
		}
		return nil
	}
	select {
	case <-ch:
	case <-time.After(backgroundPoll):
	}
	return nil
}

// writerFunc adapts a Write method to io.Writer.
type writerFunc func([]byte) (int, error)

// Write implements io.Writer.
func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
