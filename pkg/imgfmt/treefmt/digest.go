package treefmt

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"strings"
)

// The sparse digest of an image or archive, and its algorithms (docs/tree-format.md, "Digests").
//
// A manifest records a digest of every file it names, to catch a file damaged on a disk or a
// link, or cut short. The digest is *sparse*: it hashes, for every 4096-byte block of the file
// (the last one may be shorter) that is not all zeros, the block's index as a little-endian u64
// followed by the block's bytes, and finally the file size as a little-endian u64. All-zero
// blocks (holes) cost nothing to hash, so a sparse 1 GiB image hashes as fast as its data; any
// change of data, position or size changes the digest. Two hash functions carry that definition:
//
//   - crc32c-sparse, CRC-32C (Castagnoli, SSE 4.2 on amd64: ~0.04 s/GiB), the default since
//     manifest version 5 (field image_digest / digest, "crc32c-sparse:89abcdef");
//   - sha256-sparse, SHA-256 (~0.7-0.9 s/GiB: three times a copy of the same bytes), the only one
//     before version 5 (fields image_sha256 / sha256, hex) and still chosen by --digest=sha256.
//
// Neither is a signature: the manifest lies beside the images unsigned, so whoever can rewrite
// the directory can rewrite the digests (docs/security.md).

// DigestAlg names a sparse digest's hash function as a manifest writes it before the value.
type DigestAlg string

// The digest algorithms.
const (
	// DigestCRC32C is the sparse definition over CRC-32C (Castagnoli): 8 hex digits.
	DigestCRC32C DigestAlg = "crc32c-sparse"
	// DigestSHA256 is the sparse definition over SHA-256: 64 hex digits.
	DigestSHA256 DigestAlg = "sha256-sparse"
	// DefaultDigest is what a checkpoint records unless asked for another.
	DefaultDigest = DigestCRC32C
)

// digestAlgs are the algorithms this build knows.
var digestAlgs = []DigestAlg{DigestCRC32C, DigestSHA256}

// ParseDigestAlg parses a digest choice as the command line gives it: "crc32c" or "sha256" (the
// manifest's names, "crc32c-sparse" and "sha256-sparse", are accepted too).
func ParseDigestAlg(s string) (DigestAlg, error) {
	for _, a := range digestAlgs {
		if s == string(a) || s == a.Flag() {
			return a, nil
		}
	}
	return "", fmt.Errorf("digest %q: want %s or %s", s, DigestCRC32C.Flag(), DigestSHA256.Flag())
}

// Flag returns the algorithm's name on the command line ("crc32c", "sha256").
func (a DigestAlg) Flag() string { return strings.TrimSuffix(string(a), "-sparse") }

// String returns the algorithm's name for people ("CRC-32C", "SHA-256").
func (a DigestAlg) String() string {
	switch a {
	case DigestCRC32C:
		return "CRC-32C"
	case DigestSHA256:
		return "SHA-256"
	}
	return string(a)
}

// hexLen is the length of a value of a in hex; 0 for an unknown algorithm.
func (a DigestAlg) hexLen() int {
	switch a {
	case DigestCRC32C:
		return 2 * crc32.Size
	case DigestSHA256:
		return 2 * sha256.Size
	}
	return 0
}

// FileDigest is the sparse digest of one file: its algorithm and its value in lower-case hex.
type FileDigest struct {
	Alg DigestAlg
	Hex string
}

// String returns the digest as a manifest's image_digest holds it: "ALG:HEX".
func (d FileDigest) String() string { return string(d.Alg) + ":" + d.Hex }

// ParseFileDigest parses "ALG:HEX" (an image_digest value): a known algorithm and a lower-case hex
// value of its length.
func ParseFileDigest(s string) (FileDigest, error) {
	alg, val, ok := strings.Cut(s, ":")
	if !ok {
		return FileDigest{}, fmt.Errorf("%q is not ALGORITHM:HEX", s)
	}
	d := FileDigest{Alg: DigestAlg(alg), Hex: val}
	n := d.Alg.hexLen()
	if n == 0 {
		var known []string
		for _, a := range digestAlgs {
			known = append(known, string(a))
		}
		return FileDigest{}, fmt.Errorf("unknown digest algorithm %q (this build knows %s)", alg, strings.Join(known, ", "))
	}
	if !isLowerHex(val, n) {
		return FileDigest{}, fmt.Errorf("%s value %q is not %d lower-case hex digits", alg, val, n)
	}
	return d, nil
}

// isLowerHex reports whether s is n lower-case hex digits.
func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// castagnoli is the CRC-32C table; hash/crc32 uses the SSE 4.2 instruction for it on amd64.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Digest computes a sparse digest (see the top of this file) of the bytes written to it. The zero
// Digest is a SHA-256 one (the only algorithm before manifest version 5); NewDigest chooses.
type Digest struct {
	alg   DigestAlg
	h     hash.Hash // SHA-256 state.
	crc   uint32    // CRC-32C state.
	block [digestBlock]byte
	fill  int   // Bytes in block.
	size  int64 // Bytes seen so far.
}

const digestBlock = 4096

// NewDigest returns a Digest with algorithm alg (DigestCRC32C or DigestSHA256).
func NewDigest(alg DigestAlg) *Digest { return &Digest{alg: alg} }

// Alg returns d's algorithm.
func (d *Digest) Alg() DigestAlg {
	if d.alg == "" {
		return DigestSHA256
	}
	return d.alg
}

func (d *Digest) init() {
	if d.alg == "" {
		d.alg = DigestSHA256
	}
	if d.alg == DigestSHA256 && d.h == nil {
		d.h = sha256.New()
	}
}

// Write implements io.Writer; it never fails.
func (d *Digest) Write(b []byte) (int, error) {
	d.init()
	n := len(b)
	for len(b) > 0 {
		if d.fill == 0 && len(b) >= digestBlock {
			// A whole block: hashed where it is, not copied into d.block first.
			d.size += digestBlock
			d.hashBlock(b[:digestBlock])
			b = b[digestBlock:]
			continue
		}
		c := copy(d.block[d.fill:], b)
		d.fill += c
		d.size += int64(c)
		b = b[c:]
		if d.fill == digestBlock {
			d.flush()
		}
	}
	return n, nil
}

// Hole adds n zero bytes.
func (d *Digest) Hole(n int64) {
	d.init()
	for n > 0 && d.fill != 0 {
		c := min(n, int64(digestBlock-d.fill))
		clear(d.block[d.fill : d.fill+int(c)])
		d.fill += int(c)
		d.size += c
		n -= c
		if d.fill == digestBlock {
			d.flush()
		}
	}
	whole := n / digestBlock * digestBlock
	d.size += whole
	n -= whole
	if n > 0 {
		clear(d.block[:n])
		d.fill = int(n)
		d.size += n
	}
}

// Size returns the number of bytes written so far, holes included.
func (d *Digest) Size() int64 { return d.size }

// flush hashes the block in d.block (d.fill bytes) unless it is all zeros.
func (d *Digest) flush() {
	b := d.block[:d.fill]
	d.fill = 0
	d.hashBlock(b)
}

// zeroBlock is a block of zeros to compare with.
var zeroBlock [digestBlock]byte

// hashBlock hashes b, the block that ends at d.size, unless it is all zeros.
func (d *Digest) hashBlock(b []byte) {
	if bytes.Equal(b, zeroBlock[:len(b)]) {
		return
	}
	var idx [8]byte
	binary.LittleEndian.PutUint64(idx[:], uint64((d.size-int64(len(b)))/digestBlock))
	d.update(idx[:])
	d.update(b)
}

// update feeds b to the hash function.
func (d *Digest) update(b []byte) {
	if d.alg == DigestCRC32C {
		d.crc = crc32.Update(d.crc, castagnoli, b)
		return
	}
	d.h.Write(b)
}

// Sum returns the digest of everything written so far. It does not change d.
func (d *Digest) Sum() FileDigest {
	d.init()
	c := *d
	if c.alg == DigestSHA256 {
		// Finish a copy: hash state cannot be cloned generically, so continue from a
		// marshaled copy of d's.
		st, _ := d.h.(encoding.BinaryMarshaler).MarshalBinary()
		h := sha256.New()
		_ = h.(encoding.BinaryUnmarshaler).UnmarshalBinary(st)
		c.h = h
	}
	if c.fill > 0 {
		c.flush()
	}
	var sz [8]byte
	binary.LittleEndian.PutUint64(sz[:], uint64(c.size))
	c.update(sz[:])
	if c.alg == DigestCRC32C {
		return FileDigest{Alg: c.alg, Hex: fmt.Sprintf("%08x", c.crc)}
	}
	return FileDigest{Alg: c.alg, Hex: hex.EncodeToString(c.h.Sum(nil))}
}

// HashFile returns the sparse digest with algorithm alg, and the size, of the file at path.
func HashFile(path string, alg DigestAlg) (FileDigest, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return FileDigest{}, 0, err
	}
	defer f.Close()
	d := NewDigest(alg)
	n, err := io.Copy(d, f)
	if err != nil {
		return FileDigest{}, 0, err
	}
	return d.Sum(), n, nil
}
