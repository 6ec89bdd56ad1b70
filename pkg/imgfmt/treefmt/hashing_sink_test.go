package treefmt

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"math/rand"
	"testing"
)

// definitionInput is the byte string the sparse digest hashes for data, by its definition
// (digest.go): for every non-zero 4096-byte block, its index (u64 LE) and its bytes; then the size.
func definitionInput(data []byte) []byte {
	var in []byte
	for off := 0; off < len(data); off += digestBlock {
		b := data[off:min(off+digestBlock, len(data))]
		zero := true
		for _, c := range b {
			if c != 0 {
				zero = false
				break
			}
		}
		if zero {
			continue
		}
		in = binary.LittleEndian.AppendUint64(in, uint64(off/digestBlock))
		in = append(in, b...)
	}
	return binary.LittleEndian.AppendUint64(in, uint64(len(data)))
}

// refDigest computes the sparse digest of data with alg by its definition, the hash function
// applied once to the whole definitionInput.
func refDigest(alg DigestAlg, data []byte) FileDigest {
	in := definitionInput(data)
	switch alg {
	case DigestCRC32C:
		return FileDigest{Alg: alg, Hex: fmt.Sprintf("%08x", crc32.Checksum(in, crc32.MakeTable(crc32.Castagnoli)))}
	case DigestSHA256:
		sum := sha256.Sum256(in)
		return FileDigest{Alg: alg, Hex: hex.EncodeToString(sum[:])}
	}
	panic("unknown algorithm " + alg)
}

// nullSink takes everything.
type nullSink struct{}

func (nullSink) Write(b []byte) (int, error) { return len(b), nil }
func (nullSink) Hole(int64) error            { return nil }

// TestHashingSinkMatchesDefinition feeds random mixtures of writes (small, unaligned, a chunk,
// larger than the hash queue; data with zero blocks in it) and holes to a HashingSink, for each
// algorithm, serial and parallel, and compares each result with the digest computed by
// definition.
func TestHashingSinkMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	sizes := []int{1, 100, 4095, 4096, 4097, 70 << 10, 1 << 20, 3<<20 + 17}
	for iter := 0; iter < 40; iter++ {
		var data []byte
		type op struct {
			buf  []byte
			hole int64
		}
		var ops []op
		for k := rng.Intn(12) + 1; k > 0; k-- {
			if rng.Intn(4) == 0 {
				n := int64(sizes[rng.Intn(len(sizes))])
				ops = append(ops, op{hole: n})
				data = append(data, make([]byte, n)...)
				continue
			}
			b := make([]byte, sizes[rng.Intn(len(sizes))])
			rng.Read(b)
			if len(b) > 3*digestBlock && rng.Intn(2) == 0 {
				clear(b[digestBlock : 3*digestBlock]) // zero blocks inside a write
			}
			ops = append(ops, op{buf: b})
			data = append(data, b...)
		}
		for _, alg := range []DigestAlg{DigestCRC32C, DigestSHA256, ""} {
			want := refDigest(DigestSHA256, data) // The zero Alg is SHA-256.
			if alg != "" {
				want = refDigest(alg, data)
			}
			for _, parallel := range []bool{false, true} {
				hs := &HashingSink{W: nullSink{}, Alg: alg, Parallel: parallel}
				for _, o := range ops {
					if o.buf != nil {
						b := append([]byte(nil), o.buf...)
						if _, err := hs.Write(b); err != nil {
							t.Fatal(err)
						}
						// The caller may reuse its buffer once Write returned.
						rng.Read(b)
					} else if err := hs.Hole(o.hole); err != nil {
						t.Fatal(err)
					}
				}
				got, size := hs.Result()
				if got != want || size != int64(len(data)) {
					t.Fatalf("iteration %d, %q, parallel %t: digest %s size %d, want %s size %d", iter, alg, parallel, got, size, want, len(data))
				}
			}
		}
	}
}

// TestHashingSinkResultTwice checks that Result can be asked in between and the writes go on.
func TestHashingSinkResultTwice(t *testing.T) {
	a := make([]byte, 2<<20)
	for i := range a {
		a[i] = byte(i%251 + 1)
	}
	for _, alg := range []DigestAlg{DigestCRC32C, DigestSHA256} {
		hs := &HashingSink{W: nullSink{}, Alg: alg, Parallel: true}
		hs.Write(a)
		if got, _ := hs.Result(); got != refDigest(alg, a) {
			t.Fatalf("%s: first result %s, want %s", alg, got, refDigest(alg, a))
		}
		hs.Write(a)
		if got, _ := hs.Result(); got != refDigest(alg, append(append([]byte{}, a...), a...)) {
			t.Fatalf("%s: second result %s is not the digest of both writes", alg, got)
		}
	}
}
