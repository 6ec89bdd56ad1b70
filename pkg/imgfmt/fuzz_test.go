package imgfmt

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The decoders must never panic, must bound what they allocate, and must agree with each other and
// with the encoder: an accepted image is canonical, so re-encoding what Decode returns must give back
// the very same bytes. The seed corpus is in testdata/fuzz/<target>/ (regenerate with -update).

func FuzzDecode(f *testing.F) {
	for _, s := range seedImages(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeCanonical(t, data)
	})
}

func FuzzDecodeStream(f *testing.F) {
	for _, s := range seedImages(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		streamErr := decodeStreamAll(data)
		_, atErr := Decode(bytes.NewReader(data), int64(len(data)))
		if (streamErr == nil) != (atErr == nil) {
			t.Fatalf("decoders disagree: stream %v, ReaderAt %v", streamErr, atErr)
		}
		var fe *FormatError
		if streamErr != nil && !errors.As(streamErr, &fe) {
			t.Fatalf("stream decoder returned %T %v, want a *FormatError", streamErr, streamErr)
		}
	})
}

// decodeCanonical is the check every decoder fuzz target makes on its input: Decode either refuses
// data with a *FormatError (decodeCanonical returns nil) or accepts it, and then re-encoding the
// process gives back the very same bytes and the stream decoder accepts them too.
func decodeCanonical(t *testing.T, data []byte) *Process {
	t.Helper()
	p, err := Decode(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Fatalf("Decode returned %T %v, want a *FormatError", err, err)
		}
		return nil
	}
	var out bytes.Buffer
	if err := Encode(&out, p); err != nil {
		t.Fatalf("re-encoding an accepted image: %v", err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("accepted image is not canonical: re-encoding gives %d different bytes", len(out.Bytes()))
	}
	if err := decodeStreamAll(data); err != nil {
		t.Fatalf("stream decoder refuses what Decode accepts: %v", err)
	}
	return p
}

// decodeStreamAll runs the stream decoder over data, reading every segment.
func decodeStreamAll(data []byte) error {
	d, err := NewStreamDecoder(bytes.NewReader(data))
	if err != nil {
		return err
	}
	for {
		_, r, err := d.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
	}
}

// seedImages returns valid images and broken variants of them.
func seedImages(t testing.TB) [][]byte {
	small := testProcess()
	small.Threads = small.Threads[:1]
	small.Threads[0].XState = nil
	small.Files = nil
	small.SigInfo = nil
	small.Mappings = small.Mappings[2:3] // one MapZero mapping: no data
	small.Threads[0].Regs.Rsp = 0
	valid := [][]byte{encodeToBytes(t, testProcess()), encodeToBytes(t, small)}
	seeds := append([][]byte(nil), valid...)
	g := valid[1]
	broken := func(mut func(b []byte) []byte) {
		seeds = append(seeds, mut(bytes.Clone(g)))
	}
	broken(func(b []byte) []byte { return b[:100] })                             // truncated header area
	broken(func(b []byte) []byte { return b[:len(b)-1] })                        // one byte short
	broken(func(b []byte) []byte { b[56] = 0xff; b[57] = 0xff; return b })       // e_phnum
	broken(func(b []byte) []byte { b[64+32] = 0xff; b[64+35] = 0x7f; return b }) // PT_NOTE filesz
	broken(func(b []byte) []byte { b[64+8]++; return b })                        // PT_NOTE offset
	broken(func(b []byte) []byte { b[64+56+16] = 1; return b })                  // unaligned PT_LOAD vaddr
	broken(func(b []byte) []byte { b[64+112]++; return b })                      // first note's namesz
	broken(func(b []byte) []byte { b[64+112+4] = 0xff; return b })               // first note's descsz
	broken(func(b []byte) []byte { return append(b, 0) })                        // trailing byte
	return seeds
}

// TestFuzzSeedCorpus writes (with -update) and checks the checked-in seed corpus: every file is in
// the fuzzing corpus format and the first two, the valid images, decode.
func TestFuzzSeedCorpus(t *testing.T) {
	seeds := seedImages(t)
	for _, target := range []string{"FuzzDecode", "FuzzDecodeStream"} {
		dir := filepath.Join("testdata", "fuzz", target)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for i, s := range seeds {
				name := fmt.Sprintf("seed-%02d", i)
				body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(s)) + ")\n"
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		for i := range seeds {
			b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)))
			if err != nil {
				t.Fatalf("%v (run go test -run TestFuzzSeedCorpus -update)", err)
			}
			body, ok := strings.CutPrefix(string(b), "go test fuzz v1\n[]byte(")
			if !ok {
				t.Fatalf("%s/seed-%02d: not a fuzz corpus file", dir, i)
			}
			s, err := strconv.Unquote(strings.TrimSuffix(body, ")\n"))
			if err != nil {
				t.Fatalf("%s/seed-%02d: %v", dir, i, err)
			}
			_, err = Decode(strings.NewReader(s), int64(len(s)))
			if valid := i < 2; valid != (err == nil) {
				t.Errorf("%s/seed-%02d: Decode error %v, valid seed %v", dir, i, err, valid)
			}
		}
	}
}
