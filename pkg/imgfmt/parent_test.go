package imgfmt

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"reflect"
	"strings"
	"testing"
)

// incrBase is a complete process with two private content mappings (64 and 8 pages), a zero
// mapping and a reference mapping; mem holds the content mappings' bytes.
func incrBase(seed int64) (*Process, map[uint64][]byte) {
	p := testProcess()
	rng := rand.New(rand.NewSource(seed))
	mem := map[uint64][]byte{}
	big := make([]byte, 64*PageSize)
	rng.Read(big[:40*PageSize]) // The last 24 pages are zero.
	small := make([]byte, 8*PageSize)
	rng.Read(small)
	mem[0x402000], mem[0x7ffe0000e000] = big, small
	p.Mappings = []Mapping{
		p.Mappings[0],
		{Start: 0x402000, End: 0x402000 + 64*PageSize, Prot: ProtRead | ProtWrite, Kind: MapContent, Name: "[anon:big]"},
		{Start: 0x500000, End: 0x505000, Prot: ProtRead | ProtWrite, Kind: MapZero, Name: "[heap]"},
		{Start: 0x7ffe0000e000, End: 0x7ffe0000e000 + 8*PageSize, Prot: ProtRead | ProtWrite, GrowsDown: true, Kind: MapContent, Name: "[stack]"},
	}
	p.VM.BrkStart, p.VM.BrkEnd = 0x500000, 0x505000
	p.VM.ArgvStart, p.VM.ArgvEnd, p.VM.EnvvStart, p.VM.EnvvEnd = 0x7ffe0000fe00, 0x7ffe0000fe10, 0x7ffe0000fe10, 0x7ffe0000ff00
	setContents(p, mem)
	return p, mem
}

func setContents(p *Process, mem map[uint64][]byte) {
	for i := range p.Mappings {
		if b, ok := mem[p.Mappings[i].Start]; ok {
			p.Mappings[i].Contents = bytes.NewReader(b)
		}
	}
}

// cloneMem deep-copies mem.
func cloneMem(mem map[uint64][]byte) map[uint64][]byte {
	c := map[uint64][]byte{}
	for k, v := range mem {
		c[k] = bytes.Clone(v)
	}
	return c
}

// chainOf decodes images (child first) into a Chain.
func chainOf(t *testing.T, images ...[]byte) *Chain {
	t.Helper()
	var ps []*Process
	var rs []io.ReaderAt
	for _, img := range images {
		p, err := Decode(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		ps = append(ps, p)
		rs = append(rs, bytes.NewReader(img))
	}
	c, err := NewChain(ps, rs)
	if err != nil {
		t.Fatalf("NewChain: %v", err)
	}
	return c
}

// refTo builds the ParentRef of img.
func refTo(t *testing.T, img []byte, path string) *ParentRef {
	t.Helper()
	p, err := Decode(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	d, err := NotesDigest(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	return &ParentRef{Image: FileHandle{Path: path, Ino: 5, Mode: 0o100600, Size: int64(len(img))}, Size: int64(len(img)), NotesSHA256: d, FreezeTimeNano: p.Info.FreezeTimeNano}
}

// incremental freezes p (memory mem) against the chain of images (child first) and encodes it.
func incremental(t *testing.T, p *Process, path string, images ...[]byte) []byte {
	t.Helper()
	c := chainOf(t, images...)
	if err := MakeIncremental(p, c, refTo(t, images[0], path)); err != nil {
		t.Fatalf("MakeIncremental: %v", err)
	}
	return encodeToBytes(t, p)
}

// checkMemory compares the memory a chain stands for with mem.
func checkMemory(t *testing.T, c *Chain, mem map[uint64][]byte) {
	t.Helper()
	for start, want := range mem {
		got := make([]byte, len(want))
		known := make([]bool, len(want)/PageSize)
		if err := c.ReadAt(got, start, known); err != nil {
			t.Fatal(err)
		}
		for i, k := range known {
			if !k {
				t.Fatalf("page %#x unknown", start+uint64(i)*PageSize)
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("memory at %#x differs from what was frozen", start)
		}
	}
}

func TestIncrementalChain(t *testing.T) {
	p0, mem := incrBase(1)
	img0 := encodeToBytes(t, p0)

	// Child 1: three pages of the big mapping change, one zero page becomes non-zero.
	p1, _ := incrBase(1)
	mem1 := cloneMem(mem)
	mem1[0x402000][3*PageSize] ^= 1
	mem1[0x402000][4*PageSize+9] ^= 1
	mem1[0x402000][20*PageSize] ^= 1
	mem1[0x402000][50*PageSize] = 7
	p1.Info.FreezeTimeNano++
	setContents(p1, mem1)
	img1 := incremental(t, p1, "/ck/0.img", img0)
	q1 := chainOf(t, img1, img0).Images[0]
	if got, want := q1.Mappings[1].Runs, []PageRun{{3, 2}, {20, 1}, {50, 1}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("runs %v, want %v", got, want)
	}
	if !q1.Mappings[3].Delta || len(q1.Mappings[3].Runs) != 0 {
		t.Fatalf("the unchanged stack should be a delta of no page: %+v", q1.Mappings[3])
	}
	if len(img1) >= len(img0)/4 {
		t.Fatalf("incremental image is %d bytes, the full one %d", len(img1), len(img0))
	}

	// Child 2: a page changes back to zero, the stack changes.
	p2, _ := incrBase(1)
	mem2 := cloneMem(mem1)
	clear(mem2[0x402000][50*PageSize : 51*PageSize])
	mem2[0x7ffe0000e000][PageSize] ^= 0xff
	p2.Info.FreezeTimeNano += 2
	setContents(p2, mem2)
	img2 := incremental(t, p2, "/ck/1.img", img1, img0)
	c := chainOf(t, img2, img1, img0)
	checkMemory(t, c, mem2)
	checkMemory(t, chainOf(t, img1, img0), mem1)

	// Squash gives the complete image of the same memory.
	sq, err := c.Squash()
	if err != nil {
		t.Fatal(err)
	}
	flat := encodeToBytes(t, sq)
	fp, err := Decode(bytes.NewReader(flat), int64(len(flat)))
	if err != nil {
		t.Fatalf("decoding the squashed image: %v", err)
	}
	if fp.Parent != nil {
		t.Fatal("squashed image names a parent")
	}
	checkMemory(t, chainOf(t, flat), mem2)

	// The stream decoder hands out the stored pages.
	if err := decodeStreamAll(img2); err != nil {
		t.Fatalf("stream decode: %v", err)
	}
}

func TestCheckParent(t *testing.T) {
	p0, _ := incrBase(2)
	img0 := encodeToBytes(t, p0)
	ref := refTo(t, img0, "/p")
	q := chainOf(t, img0).Images[0]
	d, _ := NotesDigest(bytes.NewReader(img0), int64(len(img0)))
	if err := CheckParent(ref, q, int64(len(img0)), d); err != nil {
		t.Fatalf("same parent: %v", err)
	}
	other, _ := incrBase(2)
	other.Info.FreezeTimeNano++
	img := encodeToBytes(t, other)
	od, _ := NotesDigest(bytes.NewReader(img), int64(len(img)))
	if err := CheckParent(ref, q, int64(len(img)), od); err == nil {
		t.Fatal("another image passes as the parent")
	}
}

func TestIncrementalMalformed(t *testing.T) {
	p0, mem := incrBase(3)
	img0 := encodeToBytes(t, p0)
	p1, _ := incrBase(3)
	mem[0x402000][0] ^= 1
	setContents(p1, mem)
	img1 := incremental(t, p1, "/ck/0.img", img0)
	if _, err := Decode(bytes.NewReader(img1), int64(len(img1))); err != nil {
		t.Fatalf("valid incremental image: %v", err)
	}
	for _, tc := range []struct {
		name string
		mut  func(p *Process)
		want string
	}{
		{"run outside", func(p *Process) { p.Mappings[1].Runs = []PageRun{{63, 2}} }, "outside"},
		{"adjacent runs", func(p *Process) { p.Mappings[1].Runs = []PageRun{{1, 1}, {2, 1}} }, "gap"},
		{"empty run", func(p *Process) { p.Mappings[1].Runs = []PageRun{{1, 0}} }, "empty"},
		{"no parent", func(p *Process) { p.Parent = nil }, "no parent"},
		{"relative parent", func(p *Process) { p.Parent.Image.Path = "rel.img" }, "not absolute"},
		{"delta of a zero mapping", func(p *Process) { p.Mappings[2].Delta = true }, "private content"},
		{"shared delta", func(p *Process) { p.Mappings[1].Shared = true }, "private content"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := incrBase(3)
			setContents(p, mem)
			if err := MakeIncremental(p, chainOf(t, img0), refTo(t, img0, "/ck/0.img")); err != nil {
				t.Fatal(err)
			}
			tc.mut(p)
			err := Validate(p)
			var fe *FormatError
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want a FormatError containing %q", err, tc.want)
			}
		})
	}
	// Byte-level corruption of the notes: a delta note naming the wrong mapping, a run count that
	// exceeds the note.
	for _, mut := range deltaNoteMutations(img1) {
		if _, err := Decode(bytes.NewReader(mut), int64(len(mut))); err == nil {
			t.Errorf("a corrupted delta note decodes")
		}
	}
	// A chain whose image 0 needs a parent the chain lacks cannot be resolved.
	if _, err := NewChain([]*Process{chainOf(t, img1, img0).Images[0]}, []io.ReaderAt{bytes.NewReader(img1)}); err == nil {
		t.Error("NewChain accepts a chain that ends with an incremental image")
	}
}

// deltaNoteMutations returns copies of img with its first delta note's mapping index, run count
// and first run corrupted.
func deltaNoteMutations(img []byte) [][]byte {
	// A note header: namesz 11, descsz, type NoteDelta; the owner follows.
	var hdr [4]byte
	hdr[0], hdr[1], hdr[2], hdr[3] = 0x0b, 0x00, 0x43, 0x52
	i := bytes.Index(img, append(hdr[:], []byte("RUNSC-CKPT")...))
	if i < 0 {
		return nil
	}
	desc := i + 4 + 12 // type, then the owner padded to 12 bytes.
	var out [][]byte
	for _, off := range []int{4, 8, 16, 24} {
		b := bytes.Clone(img)
		b[desc+off] ^= 0x41
		out = append(out, b)
	}
	return out
}

func FuzzDecodeIncremental(f *testing.F) {
	p0, mem := incrBase(4)
	var b bytes.Buffer
	if err := Encode(&b, p0); err != nil {
		f.Fatal(err)
	}
	img0 := b.Bytes()
	p1, _ := incrBase(4)
	mem[0x402000][5*PageSize] ^= 1
	mem[0x402000][9*PageSize] ^= 1
	setContents(p1, mem)
	d, _ := NotesDigest(bytes.NewReader(img0), int64(len(img0)))
	q0, _ := Decode(bytes.NewReader(img0), int64(len(img0)))
	c, err := NewChain([]*Process{q0}, []io.ReaderAt{bytes.NewReader(img0)})
	if err != nil {
		f.Fatal(err)
	}
	if err := MakeIncremental(p1, c, &ParentRef{Image: FileHandle{Path: "/p.img", Mode: 0o100600}, Size: int64(len(img0)), NotesSHA256: d}); err != nil {
		f.Fatal(err)
	}
	var b1 bytes.Buffer
	if err := Encode(&b1, p1); err != nil {
		f.Fatal(err)
	}
	f.Add(b1.Bytes())
	for _, m := range deltaNoteMutations(b1.Bytes()) {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := decodeCanonical(t, data)
		if p == nil {
			return
		}
		// Resolving the image against itself as a parent must not panic.
		if p.Parent != nil {
			if c, err := NewChain([]*Process{p, q0}, []io.ReaderAt{bytes.NewReader(data), bytes.NewReader(img0)}); err == nil {
				_ = c.CheckResolvable()
			}
		}
	})
}

// TestChainDepth: a chain holds at most MaxChainDepth images; MakeIncremental refuses to extend a
// full one, and NewChain refuses a longer one.
func TestChainDepth(t *testing.T) {
	p0, mem := incrBase(5)
	images := [][]byte{encodeToBytes(t, p0)} // Child first.
	for n := 1; n < MaxChainDepth; n++ {
		p, _ := incrBase(5)
		mem[0x402000][n*PageSize] ^= 1
		p.Info.FreezeTimeNano += int64(n)
		setContents(p, cloneMem(mem))
		img := incremental(t, p, fmt.Sprintf("/ck/%d.img", n-1), images...)
		images = append([][]byte{img}, images...)
	}
	c := chainOf(t, images...)
	checkMemory(t, c, mem)
	p, _ := incrBase(5)
	setContents(p, mem)
	if err := MakeIncremental(p, c, refTo(t, images[0], "/ck/last.img")); err == nil {
		t.Fatalf("MakeIncremental extended a chain of %d images", len(images))
	}
	var ps []*Process
	var rs []io.ReaderAt
	for i := 0; i <= MaxChainDepth; i++ {
		ps = append(ps, c.Images[0])
		rs = append(rs, c.Readers[0])
	}
	if _, err := NewChain(ps, rs); err == nil {
		t.Fatal("NewChain accepted a chain deeper than MaxChainDepth")
	}
}

// TestPackedPages reads a delta mapping's stored pages at every alignment.
func TestPackedPages(t *testing.T) {
	mem := make([]byte, 10*PageSize)
	for i := range mem {
		mem[i] = byte(i / PageSize)
	}
	runs := []PageRun{{1, 2}, {5, 1}, {8, 2}}
	var want []byte
	for _, r := range runs {
		want = append(want, mem[r.Page*PageSize:(r.Page+r.Pages)*PageSize]...)
	}
	pp := &packedPages{r: bytes.NewReader(mem), runs: runs}
	for _, off := range []int{0, 1, PageSize - 1, PageSize, 2*PageSize + 5, len(want) - 3} {
		for _, n := range []int{1, 3, PageSize, 2*PageSize + 7} {
			if off+n > len(want) {
				continue
			}
			got := make([]byte, n)
			if _, err := pp.ReadAt(got, int64(off)); err != nil {
				t.Fatalf("ReadAt(%d, %d): %v", off, n, err)
			}
			if !bytes.Equal(got, want[off:off+n]) {
				t.Fatalf("ReadAt(%d, %d) differs", off, n)
			}
		}
	}
	if _, err := pp.ReadAt(make([]byte, 2), int64(len(want)-1)); err != io.EOF {
		t.Fatalf("reading past the end: %v, want io.EOF", err)
	}
}
