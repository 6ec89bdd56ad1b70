package treefmt

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
)

// Directory form and conversions to and from the stream form.

// SparseFile writes a sparse host file: holes are skipped (Hole moves the offset on), and Close
// sets the file's size and closes it.
type SparseFile struct {
	f   *os.File
	off int64
}

// NewSparseFile returns a SparseFile writing f from offset 0.
func NewSparseFile(f *os.File) *SparseFile { return &SparseFile{f: f} }

// Write writes b at the current offset.
func (s *SparseFile) Write(b []byte) (int, error) {
	n, err := s.f.WriteAt(b, s.off)
	s.off += int64(n)
	return n, err
}

// Hole skips n bytes (they read as zeros).
func (s *SparseFile) Hole(n int64) error { s.off += n; return nil }

// Close sets the file's size to the offset reached and closes it.
func (s *SparseFile) Close() error {
	err := s.f.Truncate(s.off)
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// SplitStream reads a tree stream from r into dir, which must not exist or be empty; it is created
// with mode 0700. Holes stay holes. On any error the files written so far are removed again (and
// dir, if SplitStream created it), so a failed split leaves nothing behind. The manifest is
// validated and each image's and archive's digest, computed as it is written, is compared with
// the manifest's: the result is what VerifyDir accepts, without reading the files back.
func SplitStream(r io.Reader, dir string) (err error) {
	created, err := prepareDir(dir)
	if err != nil {
		return err
	}
	var written []string
	defer func() {
		if err == nil {
			return
		}
		for _, n := range written {
			os.Remove(filepath.Join(dir, n))
		}
		if created {
			os.Remove(dir)
		}
	}()
	return splitInto(r, dir, &written, nil)
}

// splitInto is SplitStream into an existing directory, recording the names of the files it
// creates in *written. SLOT records are passed to slot (nil: they are invalid); each names a
// file slot put into dir, whose digest is not checked (its bytes never pass through here).
func splitInto(r io.Reader, dir string, written *[]string, slot func(name string, index uint64) error) error {
	// Each file is hashed as it is written, with the algorithm the stream's header announces:
	// checking the digests afterwards would read every byte back (a second pass over the whole
	// checkpoint after it was written). Only a file whose manifest digest has another algorithm
	// than announced is read back (checkDigests below).
	sinks := make(map[string]*HashingSink)
	slotted := make(map[string]bool)
	var slotFn func(string, uint64) error
	if slot != nil {
		slotFn = func(name string, index uint64) error {
			if err := slot(name, index); err != nil {
				return err
			}
			*written = append(*written, name)
			slotted[name] = true
			return nil
		}
	}
	alg := DigestSHA256
	header := func(h streamHeader) { alg = h.digest }
	err := readStream(r, header, func(name string) (FileSink, error) {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, err
		}
		*written = append(*written, name)
		fs := NewSparseFile(f)
		hs := &HashingSink{W: fs, Alg: alg}
		sinks[name] = hs
		return closingHashSink{HashingSink: hs, file: fs}, nil
	}, slotFn)
	if err != nil {
		return err
	}
	m, err := CheckDir(dir)
	if err != nil {
		return err
	}
	return checkDigests(m, func(name string, want DigestAlg) (FileDigest, bool, error) {
		hs, ok := sinks[name]
		if !ok {
			if slotted[name] {
				return FileDigest{}, false, nil // Written by the sentry into an image file.
			}
			return FileDigest{}, false, invalidf("the stream does not hold %s", name)
		}
		if hs.digest().Alg() != want {
			// The header announced another algorithm than the manifest records for this
			// file: hash what was written.
			sum, _, err := HashFile(filepath.Join(dir, name), want)
			return sum, true, err
		}
		sum, _ := hs.Result()
		return sum, true, nil
	})
}

// closingHashSink is a HashingSink whose Close closes the file it writes (its W).
type closingHashSink struct {
	*HashingSink
	file *SparseFile
}

// Close closes the file.
func (s closingHashSink) Close() error { return s.file.Close() }

// prepareDir makes sure dir exists and is empty, and reports whether it created it.
func prepareDir(dir string) (bool, error) {
	err := os.Mkdir(dir, 0o700)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, os.ErrExist) {
		return false, err
	}
	ents, rerr := os.ReadDir(dir)
	if rerr != nil {
		return false, rerr
	}
	if len(ents) != 0 {
		return false, fmt.Errorf("%s: directory is not empty", dir)
	}
	return false, nil
}

// CheckDir is VerifyDir without the digests: the manifest is read and validated and each
// process's image and each filesystem archive must exist with the recorded size. It reads no image content, so it costs the
// same for any size; restore uses it unless asked to verify digests (docs/tree-format.md).
func CheckDir(dir string) (*Manifest, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	for i := range m.Processes {
		p := &m.Processes[i]
		if p.Image == "" {
			continue
		}
		st, err := os.Stat(filepath.Join(dir, p.Image))
		if err != nil {
			return nil, fmt.Errorf("pid %d: image: %w", p.PID, err)
		}
		if !st.Mode().IsRegular() {
			return nil, invalidf("pid %d: image %s is not a regular file", p.PID, p.Image)
		}
		if st.Size() != p.ImageSize {
			return nil, invalidf("pid %d: image %s has %d bytes, the manifest says %d", p.PID, p.Image, st.Size(), p.ImageSize)
		}
	}
	for _, fa := range m.Filesystems {
		st, err := os.Stat(filepath.Join(dir, fa.Archive))
		if err != nil {
			return nil, fmt.Errorf("archive of %s: %w", fa.Path, err)
		}
		if !st.Mode().IsRegular() || st.Size() != fa.Size {
			return nil, invalidf("archive %s of %s is not a regular file of the manifest's %d bytes", fa.Archive, fa.Path, fa.Size)
		}
	}
	return m, nil
}

// VerifyDir is CheckDir plus the sparse digest of each process's image and each filesystem
// archive, computed with the algorithm the manifest records for it (CRC-32C or SHA-256), compared
// with the manifest's. It reads every image byte. It returns the manifest.
func VerifyDir(dir string) (*Manifest, error) {
	m, err := CheckDir(dir)
	if err != nil {
		return nil, err
	}
	err = checkDigests(m, func(name string, alg DigestAlg) (FileDigest, bool, error) {
		sum, _, err := HashFile(filepath.Join(dir, name), alg)
		return sum, true, err
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// checkDigests compares the digest sum(name, alg) of each process image and filesystem archive of
// m with the manifest's, alg being the algorithm the manifest records for the file; a file whose
// sum reports no digest (false) is not compared. A mismatch names the file and the algorithm.
func checkDigests(m *Manifest, sum func(name string, alg DigestAlg) (FileDigest, bool, error)) error {
	for i := range m.Processes {
		p := &m.Processes[i]
		if p.Image == "" {
			continue
		}
		want, err := p.RecordedDigest()
		if err != nil {
			return invalidf("pid %d: image %s: %v", p.PID, p.Image, err)
		}
		got, ok, err := sum(p.Image, want.Alg)
		if err != nil {
			return fmt.Errorf("pid %d: image: %w", p.PID, err)
		}
		if ok && got != want {
			return invalidf("pid %d: image %s does not match the manifest's %s digest (%s): changed or corrupted", p.PID, p.Image, want.Alg, string(want.Alg))
		}
	}
	for i := range m.Filesystems {
		fa := &m.Filesystems[i]
		want, err := fa.RecordedDigest()
		if err != nil {
			return invalidf("archive %s of %s: %v", fa.Archive, fa.Path, err)
		}
		got, ok, err := sum(fa.Archive, want.Alg)
		if err != nil {
			return fmt.Errorf("archive of %s: %w", fa.Path, err)
		}
		if ok && got != want {
			return invalidf("archive %s of %s does not match the manifest's %s digest (%s): changed or corrupted", fa.Archive, fa.Path, want.Alg, string(want.Alg))
		}
	}
	return nil
}

// WriteStream writes the checkpoint in dir as a tree stream to w: the images in pid order, then
// the manifest. Runs of zero pages become holes.
func WriteStream(w io.Writer, dir string) error {
	m, err := VerifyDir(dir)
	if err != nil {
		return err
	}
	sw := NewStreamWriter(w)
	if algs := m.DigestAlgs(); len(algs) == 1 {
		sw.SetDigest(algs[0]) // The readers' hint (stream.go).
	}
	var names []string
	for _, p := range m.Processes {
		if p.Image != "" {
			names = append(names, p.Image)
		}
	}
	for _, fa := range m.Filesystems {
		names = append(names, fa.Archive)
	}
	sort.Strings(names)
	names = append(names, ManifestName)
	for _, n := range names {
		if err := sw.BeginFile(n); err != nil {
			return err
		}
		if err := copySparse(sw, filepath.Join(dir, n)); err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
	}
	return sw.End()
}

// copySparse copies the file at path into sw, sending all-zero 4 KiB blocks as holes.
func copySparse(sw *StreamWriter, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			if werr := writeSparse(sw, buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func writeSparse(sw *StreamWriter, b []byte) error {
	const blk = 4096
	for len(b) > 0 {
		n := min(len(b), blk)
		zero := true
		for _, c := range b[:n] {
			if c != 0 {
				zero = false
				break
			}
		}
		var err error
		if zero {
			err = sw.Hole(int64(n))
		} else {
			_, err = sw.Write(b[:n])
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
