package treefmt

import "io"

// HashingSink passes an image through to W and computes its sparse digest and size on the way.
// The sentry uses it to fill ImageSize and ImageSHA256 while it streams.
type HashingSink struct {
	// W receives the data and the holes.
	W interface {
		io.Writer
		Hole(n int64) error
	}
	// Parallel hashes a large write on another goroutine while W writes it: SHA-256 costs about
	// as much CPU per byte as the write, so on two cores the two together take the time of the
	// slower one. After a failed write the digest is undefined.
	//
	// Hashing behind the writes instead (each write copied into a queue the hasher works
	// through, so that the next chunk's read overlaps the hash too) was tried and dropped: the
	// copy cost ~0.2 s of CPU per GiB, more than the overlap saved whenever the machine had no
	// idle core (docs/notes-pause.md, "Hashing").
	Parallel bool
	d        Digest
}

// parallelHashMin is the smallest write HashingSink hashes on another goroutine.
const parallelHashMin = 64 << 10

// Write implements io.Writer.
func (s *HashingSink) Write(b []byte) (int, error) {
	if !s.Parallel || len(b) < parallelHashMin {
		n, err := s.W.Write(b)
		s.d.Write(b[:n])
		return n, err
	}
	done := make(chan struct{})
	go func() {
		s.d.Write(b)
		close(done)
	}()
	n, err := s.W.Write(b)
	<-done
	return n, err
}

// Hole implements imgfmt.Sink.
func (s *HashingSink) Hole(n int64) error {
	if err := s.W.Hole(n); err != nil {
		return err
	}
	s.d.Hole(n)
	return nil
}

// Result returns the digest (hex) and size of everything written so far.
func (s *HashingSink) Result() (string, int64) {
	return s.d.Sum(), s.d.size
}
