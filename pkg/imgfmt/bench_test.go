package imgfmt

import (
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// Throughput of a 1 GiB image: encode to a pipe (stream sink) and to a file (seekable sink, holes),
// decode from a file (ReaderAt: headers, then every content byte through ContentRuns) and from a
// pipe (stream decoder). Run: go test -run '^$' -bench . -benchtime 3x ./pkg/imgfmt

const benchSize = 1 << 30

// synthMemory is a ReaderAt over benchSize bytes of synthetic memory: a repeating 1 MiB pattern of
// random bytes whose last quarter (256 KiB) is zero, as untouched heap would be, so a quarter of the
// image is holes in a file.
type synthMemory struct{ pattern []byte }

func newSynthMemory() *synthMemory {
	r := rand.New(rand.NewPCG(1, 2))
	p := make([]byte, chunkSize)
	for i := range p[:len(p)*3/4] {
		p[i] = byte(r.Uint32() | 1)
	}
	return &synthMemory{pattern: p}
}

func (s *synthMemory) ReadAt(b []byte, off int64) (int, error) {
	n := 0
	for n < len(b) {
		o := int((off + int64(n)) % int64(len(s.pattern)))
		n += copy(b[n:], s.pattern[o:])
	}
	return n, nil
}

// benchProcess is a process with one 1 GiB content mapping.
func benchProcess() *Process {
	p := testProcess()
	p.Mappings = []Mapping{{Start: 0x10000000, End: 0x10000000 + benchSize, Prot: ProtRead | ProtWrite, Kind: MapContent, Name: "[heap]", Contents: newSynthMemory()}}
	p.VM.Exe = nil
	return p
}

func BenchmarkEncodePipe(b *testing.B) {
	p := benchProcess()
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		r, w, err := os.Pipe()
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error)
		go func() {
			_, err := io.CopyBuffer(io.Discard, r, make([]byte, chunkSize))
			done <- err
		}()
		if err := Encode(w, p); err != nil {
			b.Fatal(err)
		}
		w.Close()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}

func BenchmarkEncodeFile(b *testing.B) {
	benchEncodeFile(b, func(f *os.File) io.Writer { return f })
}

// benchEncodeFile encodes the 1 GiB image into a new file each round, through the writer sink
// makes of the file.
func benchEncodeFile(b *testing.B, sink func(*os.File) io.Writer) {
	p := benchProcess()
	path := filepath.Join(b.TempDir(), "img")
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := Encode(sink(f), p); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// benchImage writes the 1 GiB image to a file once.
func benchImage(b *testing.B) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "img")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := Encode(f, benchProcess()); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

func BenchmarkDecodeFile(b *testing.B) {
	path := benchImage(b)
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	b.SetBytes(benchSize)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p, err := Decode(f, st.Size())
		if err != nil {
			b.Fatal(err)
		}
		var n int64
		if err := ContentRuns(f, &p.Mappings[0], func(_ uint64, d []byte) error { n += int64(len(d)); return nil }); err != nil {
			b.Fatal(err)
		}
		if n != benchSize*3/4 {
			b.Fatalf("read %d non-zero bytes, want %d", n, benchSize*3/4)
		}
	}
}

func BenchmarkDecodeHeadersOnly(b *testing.B) {
	path := benchImage(b)
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Decode(f, st.Size()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePipe(b *testing.B) {
	path := benchImage(b)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	b.ResetTimer()
	buf := make([]byte, chunkSize)
	for b.Loop() {
		r, w, err := os.Pipe()
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			f, err := os.Open(path)
			if err == nil {
				io.CopyBuffer(w, f, make([]byte, chunkSize))
				f.Close()
			}
			w.Close()
		}()
		d, err := NewStreamDecoder(r)
		if err != nil {
			b.Fatal(err)
		}
		for {
			_, seg, err := d.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.CopyBuffer(io.Discard, seg, buf); err != nil {
				b.Fatal(err)
			}
		}
		r.Close()
	}
}

// BenchmarkEncodeFileNoHoles writes the same image to a file with every zero page written out, for
// comparison with BenchmarkEncodeFile (holes).
func BenchmarkEncodeFileNoHoles(b *testing.B) {
	benchEncodeFile(b, func(f *os.File) io.Writer { return &StreamSink{W: f} })
}
