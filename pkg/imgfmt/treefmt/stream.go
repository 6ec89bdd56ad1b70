package treefmt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The stream form of a checkpoint directory ("tree stream"): what the sentry writes into a file
// descriptor, what `checkpoint --image-path -` writes to stdout and `restore --image-path -` reads.
// All integers are little-endian.
//
//	header:  "RCKTREE\n" (8 bytes), u32 version (1), u32 flags
//	  flags bit 0 (streamCRC32C): the manifest's digests are CRC-32C (crc32c-sparse), else
//	  SHA-256 (older writers wrote 0). A hint, so that a reader hashes each file as it arrives
//	  with the right algorithm (the manifest, which says, comes last); the manifest decides.
//	  Other bits are ignored.
//	record:  u32 type, u32 name length, u64 length, then the name, then for DATA the payload
//	  FILE  (1): starts a file; name is its plain file name; length 0
//	  DATA  (2): length bytes of the current file follow
//	  HOLE  (3): the current file grows by length zero bytes (nothing follows; a sparse hole)
//	  END   (4): the stream is complete; length is the number of files; nothing may follow
//	  SLOT  (5): a whole file that is not in the stream: name is its plain file name, length the
//	             index of the image file (0 for the writer's fd 3) it was written into, complete,
//	             before this record (CKPT_TREE_IMAGE_FDS_SHIFT). Only the host's `checkpoint
//	             --format=elf` passes image files; a stream on stdout or read by restore has none.
//
// A stream without END is incomplete (the freeze failed or the writer died) and must be discarded.
// The manifest is the last file, so a reader that has it has all images.

// Record types of a tree stream.
const (
	recFile = 1
	recData = 2
	recHole = 3
	recEnd  = 4
	recSlot = 5
)

// streamMagic starts every tree stream.
var streamMagic = [8]byte{'R', 'C', 'K', 'T', 'R', 'E', 'E', '\n'}

// streamCRC32C is the header flag that announces CRC-32C digests.
const streamCRC32C = 1

const (
	streamVersion = 1
	recHeaderSize = 16
	// maxFiles bounds the files of one stream.
	maxFiles = 1 << 16
	// maxDataRecord bounds one DATA record (a writer splits larger writes).
	maxDataRecord = 16 << 20
	// MaxFileSize bounds one file of a stream (holes included).
	MaxFileSize = 1 << 40
)

// StreamWriter writes a tree stream.
type StreamWriter struct {
	w       io.Writer
	files   int
	inFile  bool
	started bool
	digest  DigestAlg
}

// NewStreamWriter returns a writer of a tree stream to w; the header is written with the first
// file. The header announces SHA-256 digests unless SetDigest says otherwise.
func NewStreamWriter(w io.Writer) *StreamWriter { return &StreamWriter{w: w, digest: DigestSHA256} }

// SetDigest announces in the header that the manifest's digests have algorithm alg (a hint to
// readers, who hash each file as it arrives). It must be called before the first file.
func (s *StreamWriter) SetDigest(alg DigestAlg) { s.digest = alg }

// Digest returns the digest algorithm the header announces.
func (s *StreamWriter) Digest() DigestAlg { return s.digest }

func (s *StreamWriter) record(typ uint32, name string, length uint64) error {
	if !s.started {
		var h [16]byte
		copy(h[:8], streamMagic[:])
		binary.LittleEndian.PutUint32(h[8:], streamVersion)
		if s.digest == DigestCRC32C {
			binary.LittleEndian.PutUint32(h[12:], streamCRC32C)
		}
		if _, err := s.w.Write(h[:]); err != nil {
			return err
		}
		s.started = true
	}
	b := make([]byte, recHeaderSize+len(name))
	binary.LittleEndian.PutUint32(b[0:], typ)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(name)))
	binary.LittleEndian.PutUint64(b[8:], length)
	copy(b[recHeaderSize:], name)
	_, err := s.w.Write(b)
	return err
}

// BeginFile starts the file name; the following Write and Hole calls make up its contents.
func (s *StreamWriter) BeginFile(name string) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("stream file %q: %w", name, err)
	}
	s.files++
	s.inFile = true
	return s.record(recFile, name, 0)
}

// Write implements io.Writer: b is appended to the current file.
func (s *StreamWriter) Write(b []byte) (int, error) {
	if !s.inFile {
		return 0, errors.New("tree stream: data outside a file")
	}
	done := 0
	for done < len(b) {
		n := min(len(b)-done, maxDataRecord)
		if err := s.record(recData, "", uint64(n)); err != nil {
			return done, err
		}
		if _, err := s.w.Write(b[done : done+n]); err != nil {
			return done, err
		}
		done += n
	}
	return done, nil
}

// Hole appends n zero bytes to the current file without sending them. It makes a StreamWriter an
// imgfmt.Sink.
func (s *StreamWriter) Hole(n int64) error {
	if !s.inFile {
		return errors.New("tree stream: hole outside a file")
	}
	if n <= 0 {
		return nil
	}
	return s.record(recHole, "", uint64(n))
}

// Slot records that the file name was written, complete, into image file index (the writer's
// fd 3+index) instead of into the stream. It ends the current file.
func (s *StreamWriter) Slot(name string, index int) error {
	if err := checkName(name); err != nil {
		return fmt.Errorf("stream file %q: %w", name, err)
	}
	s.files++
	s.inFile = false
	return s.record(recSlot, name, uint64(index))
}

// End completes the stream.
func (s *StreamWriter) End() error {
	s.inFile = false
	return s.record(recEnd, "", uint64(s.files))
}

// FileSink receives one file of a stream being read.
type FileSink interface {
	io.Writer
	// Hole appends n zero bytes.
	Hole(n int64) error
	// Close finishes the file (its size is what was written plus holes).
	Close() error
}

// ReadStream reads a complete tree stream from r, handing each file to the sink open returns for
// its name. It fails on a malformed or incomplete stream (no END record), on a file name that is
// not a plain name or that appears twice, and when a file exceeds MaxFileSize.
func ReadStream(r io.Reader, open func(name string) (FileSink, error)) error {
	return readStream(r, nil, open, nil)
}

// streamHeader is what a stream's header says besides its version.
type streamHeader struct {
	// digest is the algorithm of the manifest's digests the writer announced.
	digest DigestAlg
}

// readStream is ReadStream that passes what the header says to header (if not nil) before any
// file, and also accepts SLOT records if slot is not nil: slot(name, index) is called for each,
// after the file names are checked as for files in the stream.
func readStream(r io.Reader, header func(streamHeader), open func(name string) (FileSink, error), slot func(name string, index uint64) error) error {
	var h [16]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return invalidf("reading the stream header: %v", noEOF(err))
	}
	if !bytes.Equal(h[:8], streamMagic[:]) {
		return invalidf("not a tree stream (bad magic)")
	}
	if v := binary.LittleEndian.Uint32(h[8:]); v != streamVersion {
		return invalidf("tree stream version %d not supported", v)
	}
	if header != nil {
		hd := streamHeader{digest: DigestSHA256}
		if binary.LittleEndian.Uint32(h[12:])&streamCRC32C != 0 {
			hd.digest = DigestCRC32C
		}
		header(hd)
	}
	var (
		cur   FileSink
		name  string
		size  uint64
		files = make(map[string]bool)
		buf   = make([]byte, 1<<20)
	)
	closeCur := func() error {
		if cur == nil {
			return nil
		}
		err := cur.Close()
		cur = nil
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}
	defer func() {
		if cur != nil {
			cur.Close()
		}
	}()
	for {
		var rh [recHeaderSize]byte
		if _, err := io.ReadFull(r, rh[:]); err != nil {
			return invalidf("incomplete stream (no end record): %v", noEOF(err))
		}
		typ := binary.LittleEndian.Uint32(rh[0:])
		nameLen := binary.LittleEndian.Uint32(rh[4:])
		length := binary.LittleEndian.Uint64(rh[8:])
		if nameLen > 255 || (typ != recFile && typ != recSlot && nameLen != 0) {
			return invalidf("record type %d with a %d-byte name", typ, nameLen)
		}
		switch typ {
		case recFile, recSlot:
			if typ == recSlot && slot == nil {
				return invalidf("a SLOT record in a stream read without image files")
			}
			if err := closeCur(); err != nil {
				return err
			}
			nb := make([]byte, nameLen)
			if _, err := io.ReadFull(r, nb); err != nil {
				return invalidf("reading a file name: %v", noEOF(err))
			}
			name = string(nb)
			if err := checkName(name); err != nil {
				return invalidf("stream file %q: %v", name, err)
			}
			if files[name] {
				return invalidf("stream file %q appears twice", name)
			}
			if len(files) >= maxFiles {
				return invalidf("more than %d files", maxFiles)
			}
			files[name] = true
			size = 0
			if typ == recSlot {
				if err := slot(name, length); err != nil {
					return err
				}
				continue
			}
			f, err := open(name)
			if err != nil {
				return err
			}
			cur = f
		case recData, recHole:
			if cur == nil {
				return invalidf("data before the first file")
			}
			if length > MaxFileSize || size+length > MaxFileSize {
				return invalidf("%s: larger than %d bytes", name, int64(MaxFileSize))
			}
			size += length
			if typ == recHole {
				if err := cur.Hole(int64(length)); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				continue
			}
			if length > maxDataRecord {
				return invalidf("%s: data record of %d bytes", name, length)
			}
			for left := int64(length); left > 0; {
				n := min(left, int64(len(buf)))
				if _, err := io.ReadFull(r, buf[:n]); err != nil {
					return invalidf("%s: truncated data: %v", name, noEOF(err))
				}
				if _, err := cur.Write(buf[:n]); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				left -= n
			}
		case recEnd:
			if err := closeCur(); err != nil {
				return err
			}
			if length != uint64(len(files)) {
				return invalidf("end record counts %d files, the stream had %d", length, len(files))
			}
			var extra [1]byte
			if n, _ := r.Read(extra[:]); n != 0 {
				return invalidf("data after the end record")
			}
			return nil
		default:
			return invalidf("unknown record type %d", typ)
		}
	}
}

// noEOF turns io.EOF into io.ErrUnexpectedEOF: inside a stream every EOF is premature.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
