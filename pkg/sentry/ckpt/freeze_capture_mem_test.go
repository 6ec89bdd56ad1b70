package ckpt

import (
	"bytes"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/safemem"
)

// smapsSample is smaps text in the layout gVisor's mm.ReadSmapsDataInto writes (fields trimmed to
// the ones that matter plus neighbours), including a path with spaces and the [vsyscall] entry.
const smapsSample = `00400000-00401000 r--p 00000000 00:12 48                                 /work/my prog (deleted)
Size:                  4 kB
Rss:                   4 kB
Pss:                   4 kB
Anonymous:             0 kB
AnonHugePages:         0 kB
VmFlags: rd mr me
7f0000000000-7f0004000000 rw-p 00000000 00:00 0 
Size:              65536 kB
Rss:               32768 kB
Anonymous:         32768 kB
VmFlags: rd wr mr mw me
7ffd00000000-7ffd00800000 rw-p 00000000 00:00 0                          [stack]
Size:               8192 kB
Rss:                   0 kB
Anonymous:             0 kB
ffffffffff600000-ffffffffff601000 r-xp 00000000 00:00 0                  [vsyscall]
Size:                  4 kB
Rss:                   0 kB
Anonymous:             0 kB
`

func TestParseSmaps(t *testing.T) {
	got, err := parseSmaps([]byte(smapsSample))
	if err != nil {
		t.Fatal(err)
	}
	want := map[hostarch.Addr]residency{
		0x400000:           {rss: 4 << 10},
		0x7f0000000000:     {rss: 32 << 20, anon: 32 << 20},
		0x7ffd00000000:     {},
		0xffffffffff600000: {},
	}
	if len(got) != len(want) {
		t.Fatalf("parseSmaps: %d VMAs, want %d: %v", len(got), len(want), got)
	}
	for a, w := range want {
		if g, ok := got[a]; !ok || g != w {
			t.Errorf("VMA %#x: got %+v (present %v), want %+v", a, g, ok, w)
		}
	}
}

func TestParseSmapsRejectsGarbage(t *testing.T) {
	for _, bad := range []string{
		"Rss: 4 kB\n",                                      // field before any VMA
		"zzzz-yyyy r--p 0 00:00 0\nRss: 4 kB\n",            // bad range
		"00400000-00401000 r--p 0 00:00 0\nRss: four kB\n", // bad number
	} {
		if _, err := parseSmaps([]byte(bad)); err == nil {
			t.Errorf("parseSmaps(%q) = nil error, want one", bad)
		}
	}
}

// TestBlockWriterSkipsUncommittedPages drives the mincore path with a real anonymous host mapping:
// touched pages are copied, never-touched pages come back as zeros, and reading does not commit them.
func TestBlockWriterSkipsUncommittedPages(t *testing.T) {
	const pages = 64
	mem, err := unix.Mmap(-1, 0, pages*hostarch.PageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	for p := 0; p < pages; p += 3 {
		copy(mem[p*hostarch.PageSize:], bytes.Repeat([]byte{byte(p + 1)}, hostarch.PageSize))
	}

	dst := bytes.Repeat([]byte{0xee}, len(mem)) // garbage the writer must overwrite everywhere
	w := &blockWriter{dst: dst, skipUncommitted: true}
	n, err := w.WriteFromBlocks(safemem.BlockSeqOf(safemem.BlockFromSafeSlice(mem)))
	if err != nil || n != uint64(len(mem)) {
		t.Fatalf("WriteFromBlocks = %d, %v; want %d, nil", n, err, len(mem))
	}
	for p := 0; p < pages; p++ {
		want := byte(0)
		if p%3 == 0 {
			want = byte(p + 1)
		}
		page := dst[p*hostarch.PageSize : (p+1)*hostarch.PageSize]
		if !bytes.Equal(page, bytes.Repeat([]byte{want}, hostarch.PageSize)) {
			t.Errorf("page %d: first byte %#x, want all %#x", p, page[0], want)
		}
	}
	vec := make([]byte, pages)
	if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mem[0])), uintptr(len(mem)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	for p := 1; p < pages; p += 3 {
		if vec[p]&1 != 0 {
			t.Errorf("page %d was committed by the read", p)
		}
	}

	// Without skipUncommitted every page is copied (zeros for untouched anonymous pages too).
	dst2 := bytes.Repeat([]byte{0xee}, len(mem))
	w2 := &blockWriter{dst: dst2}
	if n, err := w2.WriteFromBlocks(safemem.BlockSeqOf(safemem.BlockFromSafeSlice(mem))); err != nil || n != uint64(len(mem)) {
		t.Fatalf("plain WriteFromBlocks = %d, %v", n, err)
	}
	if !bytes.Equal(dst, dst2) {
		t.Errorf("mincore path and plain copy disagree")
	}
}

// TestBlockWriterShortDestination: a block longer than what is left of dst is cut, and the writer
// reports exactly what it wrote.
func TestBlockWriterShortDestination(t *testing.T) {
	src := bytes.Repeat([]byte{7}, 3*hostarch.PageSize)
	dst := make([]byte, hostarch.PageSize+100)
	w := &blockWriter{dst: dst, skipUncommitted: true}
	n, err := w.WriteFromBlocks(safemem.BlockSeqOf(safemem.BlockFromSafeSlice(src)))
	if err != nil || n != uint64(len(dst)) {
		t.Fatalf("WriteFromBlocks = %d, %v; want %d", n, err, len(dst))
	}
	if !bytes.Equal(dst, src[:len(dst)]) {
		t.Errorf("short copy differs")
	}
}
