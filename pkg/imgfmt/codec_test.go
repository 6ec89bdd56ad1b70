package imgfmt

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestRoundTripReaderAt(t *testing.T) {
	p := testProcess()
	img := encodeToBytes(t, p)
	size, err := ImageSize(p)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(img)) != size {
		t.Fatalf("image is %d bytes, ImageSize says %d", len(img), size)
	}
	q, err := Decode(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if !reflect.DeepEqual(stripData(p), stripData(q)) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", stripData(q), stripData(p))
	}
	for i := range p.Mappings {
		m, n := &p.Mappings[i], &q.Mappings[i]
		if m.Kind != MapContent {
			if n.Contents != nil || n.DataOffset != 0 {
				t.Errorf("mapping %d (kind %d) has data in the decoded image", i, m.Kind)
			}
			continue
		}
		if n.DataOffset%PageSize != 0 {
			t.Errorf("mapping %d: DataOffset %#x not page-aligned", i, n.DataOffset)
		}
		if !bytes.Equal(mappingBytes(t, m), mappingBytes(t, n)) {
			t.Errorf("mapping %d: contents differ after a round trip", i)
		}
		if !bytes.Equal(img[n.DataOffset:n.DataOffset+int64(n.End-n.Start)], mappingBytes(t, m)) {
			t.Errorf("mapping %d: bytes at DataOffset are not the contents", i)
		}
	}
}

func TestRoundTripStream(t *testing.T) {
	p := testProcess()
	img := encodeToBytes(t, p)
	// iotest-like: a reader that returns at most 3 bytes per Read, to exercise short reads.
	d, err := NewStreamDecoder(&trickleReader{r: bytes.NewReader(img), max: 3000})
	if err != nil {
		t.Fatalf("NewStreamDecoder: %v", err)
	}
	q := d.Process()
	if !reflect.DeepEqual(stripData(p), stripData(q)) {
		t.Fatalf("stream round trip differs")
	}
	var seen []int
	for {
		i, r, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		seen = append(seen, i)
		got, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("reading mapping %d: %v", i, err)
		}
		if !bytes.Equal(got, mappingBytes(t, &p.Mappings[i])) {
			t.Errorf("mapping %d: stream contents differ", i)
		}
	}
	if want := []int{1, 3}; !reflect.DeepEqual(seen, want) {
		t.Errorf("Next visited mappings %v, want %v", seen, want)
	}
	if _, _, err := d.Next(); err != io.EOF {
		t.Errorf("Next after the end: %v, want io.EOF", err)
	}
}

func TestStreamSkipsUnreadData(t *testing.T) {
	p := testProcess()
	img := encodeToBytes(t, p)
	d, err := NewStreamDecoder(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, r, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if _, err := r.Read(make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 2 {
		t.Errorf("got %d content mappings, want 2", n)
	}
}

func TestStreamTruncatedData(t *testing.T) {
	p := testProcess()
	img := encodeToBytes(t, p)
	for _, cut := range []int{len(img) - 1, len(img) - PageSize, int(p.Mappings[1].End - p.Mappings[1].Start)} {
		d, err := NewStreamDecoder(bytes.NewReader(img[:len(img)-cut%len(img)]))
		if err != nil {
			continue // Truncated into the head: also fine.
		}
		var last error
		for {
			_, r, err := d.Next()
			if err != nil {
				last = err
				break
			}
			if _, err := io.ReadAll(r); err != nil {
				last = err
				break
			}
		}
		var fe *FormatError
		if !errors.As(last, &fe) {
			t.Errorf("cut %d: got %v, want a *FormatError", cut, last)
		}
	}
	// Trailing garbage.
	d, err := NewStreamDecoder(bytes.NewReader(append(bytes.Clone(img), 0)))
	if err != nil {
		t.Fatal(err)
	}
	for {
		_, _, err := d.Next()
		if err == io.EOF {
			t.Fatal("trailing byte not reported")
		}
		if err != nil {
			break
		}
	}
}

func TestSeekableSinkLeavesHoles(t *testing.T) {
	p := testProcess()
	// A mapping of 64 pages with only pages 5 and 63 non-zero, and one ending in zero pages.
	big := make([]byte, 64*PageSize)
	big[5*PageSize] = 1
	big[63*PageSize+100] = 2
	tail := make([]byte, 8*PageSize)
	tail[0] = 3
	p.Mappings = append(p.Mappings,
		Mapping{Start: 0x7ffe00100000, End: 0x7ffe00100000 + 64*PageSize, Prot: ProtRead, Kind: MapContent, Contents: bytes.NewReader(big)},
		Mapping{Start: 0x7ffe00200000, End: 0x7ffe00200000 + 8*PageSize, Prot: ProtRead, Kind: MapContent, Contents: bytes.NewReader(tail)})
	path := filepath.Join(t.TempDir(), "img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := Encode(f, p); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := encodeToBytes(t, p); !bytes.Equal(onDisk, want) {
		t.Fatalf("sparse file differs from the streamed image (%d vs %d bytes)", len(onDisk), len(want))
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	blocks := stBlocks(st)
	if blocks*512 >= st.Size()-40*PageSize {
		t.Errorf("file of %d bytes uses %d bytes on disk: holes not left", st.Size(), blocks*512)
	}
	g, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if _, err := Decode(g, st.Size()); err != nil {
		t.Fatalf("Decode of the sparse file: %v", err)
	}
}

func TestEncodeRejectsInvalid(t *testing.T) {
	cases := map[string]func(p *Process){
		"no threads":         func(p *Process) { p.Threads = nil },
		"duplicate tid":      func(p *Process) { p.Threads[1].TID = p.Threads[0].TID },
		"unaligned mapping":  func(p *Process) { p.Mappings[0].End++ },
		"overlap":            func(p *Process) { p.Mappings[1].Start = p.Mappings[0].Start },
		"kernel address":     func(p *Process) { p.Mappings[3].End = 0x800000000000 },
		"reference no file":  func(p *Process) { p.Mappings[0].File = nil },
		"content no reader":  func(p *Process) { p.Mappings[1].Contents = nil },
		"duplicate fd":       func(p *Process) { p.Files[1].FD = 0 },
		"long name":          func(p *Process) { p.Info.Name = strings.Repeat("x", 16) },
		"NUL in path":        func(p *Process) { p.Files[2].Handle.Path = "/a\x00b" },
		"bad fpregs":         func(p *Process) { p.Threads[0].FPRegs = p.Threads[0].FPRegs[:100] },
		"bad kind":           func(p *Process) { p.Mappings[2].Kind = 9 },
		"AT_NULL in auxv":    func(p *Process) { p.Auxv[1].Key = 0 },
		"vdso over mapping":  func(p *Process) { p.VM.VDSOBase = 0x400000 },
		"bad pdeathsig":      func(p *Process) { p.Signals.PdeathSig = 65 },
		"unknown prot":       func(p *Process) { p.Mappings[0].Prot = 8 },
		"empty handle path":  func(p *Process) { p.VM.Exe = &FileHandle{} },
		"pid zero":           func(p *Process) { p.Info.PID = 0 },
		"unaligned file off": func(p *Process) { p.Mappings[1].FileOffset = 3 },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			p := testProcess()
			mutate(p)
			err := Encode(io.Discard, p)
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Offset != -1 {
				t.Fatalf("Encode: got %v, want a *FormatError with offset -1", err)
			}
		})
	}
}

// trickleReader returns at most max bytes per Read.
type trickleReader struct {
	r   io.Reader
	max int
}

func (t *trickleReader) Read(b []byte) (int, error) {
	if len(b) > t.max {
		b = b[:t.max]
	}
	return t.r.Read(b)
}

func TestContentRuns(t *testing.T) {
	p := testProcess()
	img := encodeToBytes(t, p)
	q, err := Decode(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	type run struct {
		addr uint64
		n    int
	}
	var got []run
	for i := range q.Mappings {
		err := ContentRuns(bytes.NewReader(img), &q.Mappings[i], func(addr uint64, data []byte) error {
			m := &p.Mappings[i]
			if want := mappingBytes(t, m)[addr-m.Start : addr-m.Start+uint64(len(data))]; !bytes.Equal(data, want) {
				t.Errorf("run at %#x: wrong bytes", addr)
			}
			got = append(got, run{addr, len(data)})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Mapping 1: pages 0 and 2 have data, page 1 is zero; mapping 3: both pages.
	want := []run{{0x402000, PageSize}, {0x404000, PageSize}, {0x7ffe0000e000, 2 * PageSize}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("runs %+v, want %+v", got, want)
	}
	sr := SegmentReader(bytes.NewReader(img), &q.Mappings[3])
	b, err := io.ReadAll(sr)
	if err != nil || !bytes.Equal(b, mappingBytes(t, &p.Mappings[3])) {
		t.Errorf("SegmentReader: %v, bytes equal %v", err, bytes.Equal(b, mappingBytes(t, &p.Mappings[3])))
	}
	if SegmentReader(bytes.NewReader(img), &q.Mappings[0]) != nil {
		t.Error("SegmentReader of a reference mapping is not nil")
	}
}

func TestAppendModeFileGetsZerosNotHoles(t *testing.T) {
	p := testProcess()
	big := make([]byte, 64*PageSize)
	big[0] = 1
	big[63*PageSize] = 2
	p.Mappings = append(p.Mappings, Mapping{Start: 0x7ffe00100000, End: 0x7ffe00100000 + 64*PageSize, Prot: ProtRead, Kind: MapContent, Contents: bytes.NewReader(big)})
	path := filepath.Join(t.TempDir(), "img")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := NewSink(f).(*StreamSink); !ok {
		t.Errorf("NewSink of an O_APPEND file is %T, want *StreamSink", NewSink(f))
	}
	if err := Encode(f, p); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, encodeToBytes(t, p)) {
		t.Fatal("image written to an O_APPEND file differs from the streamed image")
	}
}
