package treefmt

import "io"

// HashingSink passes an image through to W and computes its sparse digest (digest.go) and size
// on the way. The sentry uses it to fill an image's size and digest in the manifest while it
// streams.
type HashingSink struct {
	// W receives the data and the holes.
	W interface {
		io.Writer
		Hole(n int64) error
	}
	// Alg is the digest's algorithm; empty means SHA-256 (as before there was a choice).
	Alg DigestAlg
	// Parallel hashes a large write on another goroutine while W writes it: SHA-256 costs about
	// as much CPU per byte as the write, so on two cores the two together take the time of the
	// slower one. After a failed write the digest is undefined. CRC-32C is always computed in
	// line: it costs a twentieth of the write, less than handing the bytes to another goroutine
	// on a loaded machine.
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

// digest returns s's Digest, set to s.Alg before its first byte.
func (s *HashingSink) digest() *Digest {
	if s.d.alg == "" {
		s.d.alg = s.Alg
		s.d.init()
	}
	return &s.d
}

// Write implements io.Writer.
func (s *HashingSink) Write(b []byte) (int, error) {
	d := s.digest()
	if !s.Parallel || len(b) < parallelHashMin || d.alg != DigestSHA256 {
		n, err := s.W.Write(b)
		d.Write(b[:n])
		return n, err
	}
	done := make(chan struct{})
	go func() {
		d.Write(b)
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
	s.digest().Hole(n)
	return nil
}

// Result returns the digest and size of everything written so far.
func (s *HashingSink) Result() (FileDigest, int64) {
	d := s.digest()
	return d.Sum(), d.size
}
