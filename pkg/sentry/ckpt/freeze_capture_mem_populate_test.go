package ckpt

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/bpf"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/seccomp"
	"gvisor.dev/gvisor/pkg/sentry/platform/systrap"
	"gvisor.dev/gvisor/runsc/boot/filter/config"
)

// presentPages counts the pages of b that have a page table entry in this process
// (/proc/self/pagemap bit 63), which mincore(2) cannot tell: it reports the page cache.
func presentPages(t *testing.T, b []byte) int {
	t.Helper()
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pages := len(b) / hostarch.PageSize
	ents := make([]byte, 8*pages)
	off := int64(uintptr(unsafe.Pointer(&b[0])) / hostarch.PageSize * 8)
	if _, err := f.ReadAt(ents, off); err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := range pages {
		if binary.LittleEndian.Uint64(ents[8*i:])&(1<<63) != 0 {
			n++
		}
	}
	return n
}

// TestPopulateRead: a fresh shared mapping of a memfd whose pages are resident has no page table
// entries; populateRead gives it all of them without changing a byte, and declines what it must
// not touch (too short, unaligned).
func TestPopulateRead(t *testing.T) {
	const pages = 64
	size := pages * hostarch.PageSize
	fd, err := unix.MemfdCreate("populate", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("ckpt"), size/4)
	if _, err := unix.Pwrite(fd, want, 0); err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(fd, 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	if n := presentPages(t, m); n != 0 {
		t.Fatalf("a fresh mapping has %d present pages, want 0", n)
	}
	if populateRead(m[:populateMinBytes-hostarch.PageSize]) {
		t.Errorf("populateRead of %d bytes did it, want it declined (below populateMinBytes)", populateMinBytes-hostarch.PageSize)
	}
	if populateRead(m[1 : 1+populateMinBytes]) {
		t.Error("populateRead of an unaligned run did it, want it declined")
	}
	if n := presentPages(t, m); n != 0 {
		t.Fatalf("after declined calls %d pages are present, want 0", n)
	}
	if !populateRead(m) {
		t.Fatalf("populateRead of %d resident pages failed (unsupported: %v); this host's kernel has MADV_POPULATE_READ", pages, populateUnsupported.Load())
	}
	if n := presentPages(t, m); n != pages {
		t.Errorf("after populateRead %d of %d pages are present", n, pages)
	}
	if !bytes.Equal(m, want) {
		t.Error("the mapping's bytes changed")
	}
}

// TestSentryFilterAllowsWriterSyscalls guards the writer's host calls against a gVisor bump that
// narrows the sentry's seccomp filter: the lent views' madvise(MADV_POPULATE_READ) and the
// residency check's mincore(2) must pass gVisor's own rules for the sentry (systrap), or the
// sandbox would be killed at its first freeze. It evaluates the filter gVisor builds from
// config.Rules with gVisor's BPF interpreter.
func TestSentryFilterAllowsWriterSyscalls(t *testing.T) {
	opt := config.Options{Platform: (*systrap.Systrap)(nil).SeccompInfo()}
	allowed, denied := config.Rules(opt)
	prog := seccomp.Program{
		RuleSets: []seccomp.RuleSet{
			{Rules: denied, Action: seccomp.Trap},
			{Rules: allowed, Action: seccomp.Allow},
		},
		Options: seccomp.ProgramOptions{DefaultAction: seccomp.KillProcess, BadArchAction: seccomp.KillProcess},
	}
	insns, _, err := prog.Build()
	if err != nil {
		t.Fatalf("building the sentry's filter: %v", err)
	}
	p, err := bpf.Compile(insns, false)
	if err != nil {
		t.Fatalf("compiling the sentry's filter: %v", err)
	}
	check := func(name string, nr uintptr, args ...uint64) {
		t.Helper()
		d := linux.SeccompData{Nr: int32(nr), Arch: linux.AUDIT_ARCH_X86_64, InstructionPointer: 0x7f0000001000}
		copy(d.Args[:], args)
		buf := make([]byte, d.SizeBytes())
		got, err := bpf.Exec[bpf.NativeEndian](p, seccomp.DataAsBPFInput(&d, buf))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if linux.BPFAction(got) != linux.SECCOMP_RET_ALLOW {
			t.Errorf("the sentry's filter answers %s with %#x, want allow (%#x)", name, got, uint32(linux.SECCOMP_RET_ALLOW))
		}
	}
	check("madvise(MADV_POPULATE_READ)", unix.SYS_MADVISE, 0x7f0000000000, 1<<20, unix.MADV_POPULATE_READ)
	check("mincore", unix.SYS_MINCORE, 0x7f0000000000, 1<<20, 0x7f0000200000)
	// The filter must still refuse what the sentry may not do, or this test proves nothing.
	d := linux.SeccompData{Nr: unix.SYS_SENDFILE, Arch: linux.AUDIT_ARCH_X86_64}
	buf := make([]byte, d.SizeBytes())
	if got, _ := bpf.Exec[bpf.NativeEndian](p, seccomp.DataAsBPFInput(&d, buf)); linux.BPFAction(got) == linux.SECCOMP_RET_ALLOW {
		t.Error("the sentry's filter allows sendfile(2); the evaluation is wrong, or upstream's filter changed (docs/upstream-gaps.md)")
	}
}
