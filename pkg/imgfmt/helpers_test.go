package imgfmt

import (
	"bytes"
	"io"
	"os"
	"testing"
)

// testProcess returns a Process exercising every feature of the format: two threads (one with FP
// and XSAVE state), content, reference and zero mappings, fds of several kinds, signal actions,
// itimers, a siginfo and a working directory. Register values here are arbitrary: this process is only encoded and decoded,
// never run or shown to a debugger.
func testProcess() *Process {
	exe := &FileHandle{Path: "/bin/prog", DevMajor: 8, DevMinor: 1, Ino: 1234, Mode: 0o100755, Size: 8192, MtimeNano: 1e18, CtimeNano: 1e18 + 5}
	data := make([]byte, 3*PageSize)
	copy(data, "hello, image")
	data[2*PageSize+7] = 0xaa // page 1 stays zero: a hole.
	fx := make([]byte, fxsaveSize)
	for i := range fx {
		fx[i] = byte(i)
	}
	xs := make([]byte, 832)
	copy(xs, fx)
	xs[xstateXCR0Off] = 7
	p := &Process{
		Info:  ProcessInfo{Name: "prog", Args: "prog -x", PID: 7, PPID: 1, PGID: 7, SID: 1, FreezeTimeNano: 1700000000123456789, Platform: "systrap"},
		Creds: Creds{UID: 1000, EUID: 1000, SUID: 1000, FSUID: 1000, GID: 100, EGID: 100, SGID: 100, FSGID: 100, Groups: []uint32{100, 27}},
		Threads: []Thread{
			{TID: 7, Regs: Regs{Rip: 0x401000, Rsp: 0x7ffe0000f000, Rax: 1, Cs: 0x33, Ss: 0x2b, Eflags: 0x246, FsBase: 0x4c0000}, FPRegs: fx, XState: xs,
				SigMask: 1 << 9, SigPending: 1 << 1, AltStack: AltStack{Addr: 0x600000, Size: 8192, Flags: 0}, ClearTID: 0x4c0010, RobustList: 0x4c0020},
			{TID: 8, Regs: Regs{Rip: 0x401010, Rsp: 0x7f0000001000}, SigMask: 0},
		},
		Mappings: []Mapping{
			{Start: 0x400000, End: 0x402000, Prot: ProtRead | ProtExec, Kind: MapReference, Name: "/bin/prog", File: exe},
			{Start: 0x402000, End: 0x405000, Prot: ProtRead | ProtWrite, Kind: MapContent, Name: "/bin/prog", File: exe, FileOffset: 0x2000, Contents: bytes.NewReader(data)},
			{Start: 0x405000, End: 0x40a000, Prot: ProtRead | ProtWrite, Kind: MapZero, Name: "[heap]"},
			{Start: 0x7ffe0000e000, End: 0x7ffe00010000, Prot: ProtRead | ProtWrite, GrowsDown: true, Kind: MapContent, Name: "[stack]", Contents: bytes.NewReader(bytes.Repeat([]byte{1, 2, 3, 4}, 2*PageSize/4))},
		},
		Files: []File{
			{FD: 0, Kind: FileCharDev, StatusFlags: 2, Offset: -1, Desc: "/dev/null", Handle: &FileHandle{Path: "/dev/null", Mode: 0o20666, DevMajor: 1, DevMinor: 3}},
			{FD: 1, Kind: FileFIFO, StatusFlags: 1, Offset: -1, Desc: "pipe:[12]"},
			{FD: 3, Kind: FileRegular, FDFlags: 1, StatusFlags: 0o2002, Offset: 42, Desc: "/data/f", Handle: &FileHandle{Path: "/data/f", Ino: 99, Mode: 0o100644, Size: 100}},
			{FD: 4, Kind: FileRegular, StatusFlags: 0o1101, Offset: 0, Desc: "/data/prog.ckpt", IsImage: true, Handle: &FileHandle{Path: "/data/prog.ckpt", Ino: 100, Mode: 0o100600}},
		},
		VM: VMInfo{BrkStart: 0x405000, BrkEnd: 0x40a000, ArgvStart: 0x7ffe0000fe00, ArgvEnd: 0x7ffe0000fe10, EnvvStart: 0x7ffe0000fe10, EnvvEnd: 0x7ffe0000ff00,
			VDSOBase: 0x7ffe00020000, VDSOSize: 2 * PageSize, Exe: exe},
		Auxv:    []AuxEntry{{33, 0x7ffe00020000}, {6, 4096}, {25, 0x7ffe0000fff0}},
		SigInfo: &SigInfo{Signo: 62, Code: 0, PID: 1, UID: 0},
		Cwd:     &FileHandle{Path: "/data/work", DevMinor: 40, Ino: 77, Mode: 0o40755, Size: 4096, MtimeNano: 1e18 + 7, CtimeNano: 1e18 + 9},
	}
	p.Signals.Actions[9] = SigAction{Handler: 0x401100, Flags: 0x04000000, Restorer: 0x401200, Mask: 1 << 1}
	p.Signals.Pending = 1 << 14
	p.Signals.Itimers[0] = Itimer{IntervalNano: 1e9, ValueNano: 5e8}
	p.Signals.PdeathSig = 9
	for i := range p.VM.VDSOHash {
		p.VM.VDSOHash[i] = byte(i * 3)
	}
	return p
}

// encodeToBytes encodes p into memory (a stream sink: holes written as zeros).
func encodeToBytes(t testing.TB, p *Process) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Encode(&b, p); err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return b.Bytes()
}

// mappingBytes reads all of m's contents.
func mappingBytes(t testing.TB, m *Mapping) []byte {
	t.Helper()
	b := make([]byte, m.End-m.Start)
	if _, err := m.Contents.ReadAt(b, 0); err != nil && err != io.EOF {
		t.Fatalf("reading mapping [%#x, %#x): %v", m.Start, m.End, err)
	}
	return b
}

// stripData clears the fields that differ by design between an encoded and a decoded Process.
func stripData(p *Process) *Process {
	c := *p
	c.Mappings = append([]Mapping(nil), p.Mappings...)
	for i := range c.Mappings {
		c.Mappings[i].Contents = nil
		c.Mappings[i].DataOffset = 0
	}
	return &c
}

// decodeFile opens and decodes an image file.
func decodeFile(t testing.TB, path string) *Process {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	p, err := Decode(f, st.Size())
	if err != nil {
		t.Fatalf("Decode %s: %v", path, err)
	}
	return p
}
