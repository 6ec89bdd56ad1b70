package imgfmt

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// These tests check that standard tools read our images: readelf and eu-readelf without warnings,
// Go's debug/elf, and gdb on an image of a real stopped process.

func runTool(t *testing.T, name string, args ...string) (stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\nstderr:\n%s", name, args, err, e.String())
	}
	return o.String(), e.String()
}

func TestReadelfReadsImage(t *testing.T) {
	readelf := requireTool(t, "readelf", "binutils")
	path := writeImage(t, t.TempDir(), "img", testProcess())
	out, errOut := runTool(t, readelf, "-a", "-W", path)
	if errOut != "" {
		t.Fatalf("readelf -a -W printed warnings:\n%s", errOut)
	}
	for _, want := range []string{"CORE (Core file)", "X86-64", "NT_PRPSINFO", "NT_PRSTATUS", "NT_FPREGSET", "NT_X86_XSTATE",
		"NT_AUXV", "NT_FILE", "NT_SIGINFO", "RUNSC-CKPT", "(0x52430001)", "(0x52430007)"} {
		if !strings.Contains(out, want) {
			t.Errorf("readelf output lacks %q", want)
		}
	}
	if n := strings.Count(out, "  LOAD "); n != 4 {
		t.Errorf("readelf shows %d LOAD segments, want 4", n)
	}
}

func TestEUReadelfReadsImage(t *testing.T) {
	eu := requireTool(t, "eu-readelf", "elfutils")
	path := writeImage(t, t.TempDir(), "img", testProcess())
	out, errOut := runTool(t, eu, "-a", path)
	if errOut != "" {
		t.Fatalf("eu-readelf -a printed warnings:\n%s", errOut)
	}
	for _, want := range []string{"CORE (Core file)", "fname: prog, psargs: prog -x", "rip:      0x0000000000401000",
		"X86_XSTATE", "SYSINFO_EHDR: 0x7ffe00020000", "/bin/prog", "si_signo: 62", "RUNSC-CKPT"} {
		if !strings.Contains(out, want) {
			t.Errorf("eu-readelf output lacks %q", want)
		}
	}
}

func TestDebugELFReadsImage(t *testing.T) {
	p := testProcess()
	img := encodeToBytes(t, p)
	f, err := elf.NewFile(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("debug/elf: %v", err)
	}
	if f.Type != elf.ET_CORE || f.Machine != elf.EM_X86_64 || f.Class != elf.ELFCLASS64 {
		t.Fatalf("debug/elf: type %v machine %v class %v", f.Type, f.Machine, f.Class)
	}
	if len(f.Progs) != 1+len(p.Mappings) || f.Progs[0].Type != elf.PT_NOTE {
		t.Fatalf("debug/elf: %d program headers, first %v", len(f.Progs), f.Progs[0].Type)
	}
	for i, m := range p.Mappings {
		ph := f.Progs[i+1]
		if ph.Type != elf.PT_LOAD || ph.Vaddr != m.Start || ph.Memsz != m.End-m.Start || ph.Off%PageSize != 0 {
			t.Errorf("PT_LOAD %d: %+v does not match mapping [%#x, %#x)", i, ph.ProgHeader, m.Start, m.End)
		}
		wantFlags := elf.ProgFlag(0)
		if m.Prot&ProtRead != 0 {
			wantFlags |= elf.PF_R
		}
		if m.Prot&ProtWrite != 0 {
			wantFlags |= elf.PF_W
		}
		if m.Prot&ProtExec != 0 {
			wantFlags |= elf.PF_X
		}
		if ph.Flags != wantFlags {
			t.Errorf("PT_LOAD %d: flags %v, want %v", i, ph.Flags, wantFlags)
		}
		if m.Kind == MapContent {
			b := make([]byte, ph.Filesz)
			if _, err := ph.ReadAt(b, 0); err != nil || !bytes.Equal(b, mappingBytes(t, &m)) {
				t.Errorf("PT_LOAD %d: contents via debug/elf differ (%v)", i, err)
			}
		}
	}
	// Walk the notes with debug/elf's view of the PT_NOTE segment (independently of our parser).
	data := make([]byte, f.Progs[0].Filesz)
	if _, err := f.Progs[0].ReadAt(data, 0); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(data) >= 12 {
		namesz, descsz, typ := binary.LittleEndian.Uint32(data), binary.LittleEndian.Uint32(data[4:]), binary.LittleEndian.Uint32(data[8:])
		name := string(data[12 : 12+namesz-1])
		got = append(got, fmt.Sprintf("%s/%#x", name, typ))
		data = data[12+pad4(int(namesz))+pad4(int(descsz)):]
	}
	want := []string{"CORE/0x3", "CORE/0x1", "CORE/0x2", "LINUX/0x202", "CORE/0x1", "CORE/0x6", "CORE/0x46494c45", "CORE/0x53494749",
		"RUNSC-CKPT/0x52430001", "RUNSC-CKPT/0x52430002", "RUNSC-CKPT/0x52430003", "RUNSC-CKPT/0x52430003", "RUNSC-CKPT/0x52430004",
		"RUNSC-CKPT/0x52430005", "RUNSC-CKPT/0x52430005", "RUNSC-CKPT/0x52430005", "RUNSC-CKPT/0x52430005", "RUNSC-CKPT/0x52430006",
		"RUNSC-CKPT/0x52430007", "RUNSC-CKPT/0x52430007", "RUNSC-CKPT/0x52430007", "RUNSC-CKPT/0x52430007", "RUNSC-CKPT/0x52430008"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("notes:\n got %v\nwant %v", got, want)
	}
}

// TestGDBReadsRealProcessImage captures a real stopped static program with ptrace, encodes it, and
// asks gdb for the registers and backtrace of the image.
func TestGDBReadsRealProcessImage(t *testing.T) {
	gdb := requireTool(t, "gdb", "gdb")
	dir := t.TempDir()
	bin := buildStopper(t, dir)
	c := captureStopped(t, bin)
	defer c.close()
	path := writeImage(t, dir, "stopper.img", c.p)
	// The image must also decode and keep the real registers.
	q := decodeFile(t, path)
	if q.Threads[0].Regs.Rip != c.regs.Rip || q.Threads[0].Regs.Rsp != c.regs.Rsp {
		t.Fatalf("decoded rip/rsp %#x/%#x, captured %#x/%#x", q.Threads[0].Regs.Rip, q.Threads[0].Regs.Rsp, c.regs.Rip, c.regs.Rsp)
	}

	// The standard tools read the real image without warnings too.
	for _, tool := range [][]string{{requireTool(t, "readelf", "binutils"), "-a", "-W"}, {requireTool(t, "eu-readelf", "elfutils"), "-a"}} {
		if _, errOut := runTool(t, tool[0], append(tool[1:], path)...); errOut != "" {
			t.Errorf("%s on the real image printed warnings:\n%s", tool[0], errOut)
		}
	}

	// The decoded real image names the process and where it stopped (package inspect's tests
	// cover the summary).
	q = decodeFile(t, path)
	if q.Info.Name != "stopper" || q.Threads[0].Regs.Rip != c.regs.Rip {
		t.Errorf("decoded real image: %+v, thread 0 rip %#x, want stopper at %#x", q.Info, q.Threads[0].Regs.Rip, c.regs.Rip)
	}

	out, errOut := runTool(t, gdb, "-nx", "-batch", "-ex", "info registers", "-ex", "bt", bin, path)
	t.Logf("gdb stdout:\n%s\ngdb stderr:\n%s", out, errOut)
	reg := func(name string) uint64 {
		m := regexp.MustCompile(`(?m)^` + name + `\s+0x([0-9a-f]+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("gdb shows no %s", name)
		}
		v, _ := strconv.ParseUint(m[1], 16, 64)
		return v
	}
	for _, r := range []struct {
		name string
		want uint64
	}{{"rip", c.regs.Rip}, {"rsp", c.regs.Rsp}, {"rbp", c.regs.Rbp}, {"rax", c.regs.Rax}, {"rdi", c.regs.Rdi}, {"rbx", c.regs.Rbx}, {"r12", c.regs.R12}, {"eflags", c.regs.Eflags}} {
		if got := reg(r.name); got != r.want {
			t.Errorf("gdb %s = %#x, the real process had %#x", r.name, got, r.want)
		}
	}
	frames := regexp.MustCompile(`(?m)^#(\d+)\s+(?:0x[0-9a-f]+ in )?(\w+)`).FindAllStringSubmatch(out, -1)
	var names []string
	for _, f := range frames {
		names = append(names, f[2])
	}
	joined := " " + strings.Join(names, " ") + " "
	if !strings.Contains(joined, " ckpt_stop_here main ") {
		t.Errorf("gdb backtrace %v lacks ckpt_stop_here called from main", names)
	}
	if !strings.Contains(out, "ckpt_stop_here (depth=42)") {
		t.Errorf("gdb does not show ckpt_stop_here's argument depth=42 from the image's stack")
	}
}
