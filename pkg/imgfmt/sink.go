package imgfmt

import (
	"fmt"
	"io"
	"os"
	"syscall"
)

// Sink is where Encode writes an image. Besides writing, a sink can skip ahead: Hole(n) moves the
// write position n bytes forward without writing, and the skipped range must read back as zeros
// (a hole in a sparse file). Encode only calls Hole between writes and never ends an image with one,
// so a sink that seeks forward need not extend the file at the end.
//
// The sentry implements Sink over a gVisor file description (Write at the current offset, Hole
// advancing the offset); NewSink adapts an *os.File or any io.Writer. A Sink over a file opened
// with O_APPEND must write holes out as zeros: appending writes ignore the offset a hole advanced.
type Sink interface {
	io.Writer
	// Hole advances the write position by n > 0 bytes, leaving them as zeros.
	Hole(n int64) error
}

// NewSink returns w itself if it is a Sink; a sink that seeks over holes if w is an io.WriteSeeker
// that can actually seek (a regular *os.File not opened with O_APPEND); otherwise a sink that writes
// holes out as zeros (a pipe, a socket, a buffer, an O_APPEND file).
func NewSink(w io.Writer) Sink {
	if s, ok := w.(Sink); ok {
		return s
	}
	if f, ok := w.(*os.File); ok && appendMode(f) {
		// Writes go to the end whatever the offset, so a seek would lose the hole's zeros.
		return &StreamSink{W: w}
	}
	if ws, ok := w.(io.WriteSeeker); ok {
		if _, err := ws.Seek(0, io.SeekCurrent); err == nil {
			return &seekSink{ws}
		}
	}
	return &StreamSink{W: w}
}

// FileSink returns a Sink for f: holes are seeked over when f is seekable (a regular file), written
// as zeros otherwise (a pipe).
func FileSink(f *os.File) Sink { return NewSink(f) }

// StreamSink is a Sink that writes holes out as zero bytes: for pipes and other non-seekable writers.
type StreamSink struct {
	W io.Writer
}

// Write implements io.Writer.
func (s *StreamSink) Write(b []byte) (int, error) { return s.W.Write(b) }

// Hole implements Sink.Hole by writing n zero bytes.
func (s *StreamSink) Hole(n int64) error {
	for n > 0 {
		c := min(n, int64(len(zeroChunk)))
		if _, err := s.W.Write(zeroChunk[:c]); err != nil {
			return err
		}
		n -= c
	}
	return nil
}

// zeroChunk is a read-only source of zero bytes.
var zeroChunk [64 << 10]byte

// seekSink skips holes with Seek(n, io.SeekCurrent).
type seekSink struct {
	ws io.WriteSeeker
}

// Write implements io.Writer.
func (s *seekSink) Write(b []byte) (int, error) { return s.ws.Write(b) }

// Hole implements Sink.Hole by seeking over n bytes.
func (s *seekSink) Hole(n int64) error {
	if _, err := s.ws.Seek(n, io.SeekCurrent); err != nil {
		return fmt.Errorf("seeking over a %d-byte hole: %w", n, err)
	}
	return nil
}

// appendMode reports whether f was opened with O_APPEND.
func appendMode(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	var flags uintptr
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) { flags, _, errno = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0) }); err != nil || errno != 0 {
		return false
	}
	return flags&syscall.O_APPEND != 0
}
