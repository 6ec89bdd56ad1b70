package treefmt

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// writeTree writes a two-process stream (one live with a sparse image, one zombie) into a buffer,
// with a SHA-256 digest (a manifest as every version wrote it).
func writeTree(t *testing.T) []byte {
	t.Helper()
	return writeTreeAlg(t, DigestSHA256, DigestSHA256)
}

// writeTreeAlg is writeTree with a digest of algorithm alg, the stream's header announcing
// announce.
func writeTreeAlg(t *testing.T, alg, announce DigestAlg) []byte {
	t.Helper()
	var buf bytes.Buffer
	sw := NewStreamWriter(&buf)
	sw.SetDigest(announce)
	if err := sw.BeginFile(ImageName(1)); err != nil {
		t.Fatal(err)
	}
	hs := &HashingSink{W: sw, Alg: alg}
	hs.Write([]byte("ELF header"))
	hs.Hole(3 << 20)
	hs.Write(bytes.Repeat([]byte{7}, 5000))
	sum, size := hs.Result()
	m := &Manifest{Format: FormatName, Version: Version, Root: 0, Hostname: "h", Processes: []Process{
		{PID: 1, PGID: 1, SID: 1, TIDs: []int32{1, 3}, Comm: "sh", Image: ImageName(1), ImageSize: size},
		{PID: 2, PPID: 1, PGID: 1, SID: 1, Comm: "false", Zombie: &ExitStatus{Code: 1}},
	}}
	m.Processes[0].SetDigest(sum)
	m.RaiseVersion()
	if err := sw.BeginFile(ManifestName); err != nil {
		t.Fatal(err)
	}
	if err := m.Encode(sw); err != nil {
		t.Fatal(err)
	}
	if err := sw.End(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestStreamRoundTrip(t *testing.T) {
	stream := writeTree(t)
	if len(stream) > 64<<10 {
		t.Fatalf("stream of a 3 MiB sparse image is %d bytes: the hole was sent", len(stream))
	}
	dir := filepath.Join(t.TempDir(), "ck")
	if err := SplitStream(bytes.NewReader(stream), dir); err != nil {
		t.Fatal(err)
	}
	m, err := VerifyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Processes) != 2 || m.Processes[1].Zombie == nil || m.Processes[1].Zombie.Code != 1 {
		t.Fatalf("manifest %+v", m)
	}
	img, _ := os.ReadFile(filepath.Join(dir, ImageName(1)))
	if len(img) != 10+3<<20+5000 || img[10+3<<20] != 7 || img[20] != 0 {
		t.Fatalf("image has %d bytes", len(img))
	}
	// Directory back to a stream and once more to a directory: same files.
	var again bytes.Buffer
	if err := WriteStream(&again, dir); err != nil {
		t.Fatal(err)
	}
	dir2 := filepath.Join(t.TempDir(), "ck2")
	if err := SplitStream(&again, dir2); err != nil {
		t.Fatal(err)
	}
	img2, _ := os.ReadFile(filepath.Join(dir2, ImageName(1)))
	if !bytes.Equal(img, img2) {
		t.Fatal("image changed through WriteStream/SplitStream")
	}
}

func TestStreamRejects(t *testing.T) {
	stream := writeTree(t)
	// One byte of the image changed in transit: the split hashes as it writes and must notice.
	corrupt := append([]byte{}, stream...)
	at := bytes.Index(corrupt, []byte("ELF header"))
	if at < 0 {
		t.Fatal("no image data in the stream")
	}
	corrupt[at] = 'X'
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"truncated", stream[:len(stream)-20]},
		{"no end", stream[:len(stream)-recHeaderSize]},
		{"bad magic", append([]byte("XCKTREE\n"), stream[8:]...)},
		{"trailing", append(append([]byte{}, stream...), 0)},
		{"corrupted image byte", corrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ck")
			err := SplitStream(bytes.NewReader(tc.data), dir)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("SplitStream = %v, want ErrInvalid", err)
			}
			if _, serr := os.Stat(dir); !os.IsNotExist(serr) {
				t.Fatalf("a failed split left %s behind", dir)
			}
		})
	}
}

func TestVerifyDirDetectsTampering(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ck")
	if err := SplitStream(bytes.NewReader(writeTree(t)), dir); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, ImageName(1))
	f, _ := os.OpenFile(img, os.O_WRONLY, 0)
	f.WriteAt([]byte{1}, 100) // Inside the hole.
	f.Close()
	if _, err := VerifyDir(dir); err == nil || !strings.Contains(err.Error(), "SHA-256") {
		t.Fatalf("VerifyDir after tampering = %v", err)
	}
	os.Remove(img)
	if _, err := VerifyDir(dir); err == nil || !os.IsNotExist(errors.Unwrap(err)) && !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("VerifyDir without the image = %v", err)
	}
}

func TestDigestHoleEqualsZeros(t *testing.T) {
	var a, b Digest
	a.Write([]byte("abc"))
	a.Hole(10000)
	a.Write([]byte("xyz"))
	b.Write([]byte("abc"))
	b.Write(make([]byte, 10000))
	b.Write([]byte("xyz"))
	if a.Sum() != b.Sum() {
		t.Fatal("a hole and written zeros digest differently")
	}
	var c Digest
	c.Write([]byte("abc"))
	c.Hole(10001)
	c.Write([]byte("xyz"))
	if c.Sum() == a.Sum() {
		t.Fatal("shifted data has the same digest")
	}
}

func TestValidate(t *testing.T) {
	good := func() *Manifest {
		return &Manifest{Format: FormatName, Version: 1, Processes: []Process{
			{PID: 1, PGID: 1, SID: 1, TIDs: []int32{1}, Comm: "a", Image: "pid-1.img", ImageSize: 1, ImageSHA256: strings.Repeat("0", 64)},
			{PID: 4, PPID: 1, PGID: 1, SID: 1, TIDs: []int32{4, 5}, Comm: "b", Image: "pid-4.img", ImageSize: 1, ImageSHA256: strings.Repeat("0", 64), FilesOf: 1},
		}}
	}
	if err := good().Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(m *Manifest){
		"pid twice":        func(m *Manifest) { m.Processes[1].PID = 1 },
		"tid twice":        func(m *Manifest) { m.Processes[1].TIDs = []int32{4, 1} },
		"image path":       func(m *Manifest) { m.Processes[1].Image = "../x" },
		"same image":       func(m *Manifest) { m.Processes[1].Image = "pid-1.img" },
		"unknown parent":   func(m *Manifest) { m.Processes[1].PPID = 9 },
		"version":          func(m *Manifest) { m.Version = 99 },
		"format":           func(m *Manifest) { m.Format = "x" },
		"zombie image":     func(m *Manifest) { m.Processes[1].Zombie = &ExitStatus{} },
		"share forward":    func(m *Manifest) { m.Processes[1].FilesOf = 4 },
		"no hash":          func(m *Manifest) { m.Processes[1].ImageSHA256 = "" },
		"no tids":          func(m *Manifest) { m.Processes[1].TIDs = nil },
		"no processes":     func(m *Manifest) { m.Processes = nil },
		"fd twice":         func(m *Manifest) { m.Processes[0].FDs = []FD{{FD: 1}, {FD: 1}} },
		"negative pgid":    func(m *Manifest) { m.Processes[0].PGID = -1 },
		"negative fg pgid": func(m *Manifest) { m.StdioForeground = -1 },
		"pid is a thread":  func(m *Manifest) { m.Processes[0].TIDs = []int32{1, 4} },
		"zero pid":         func(m *Manifest) { m.Processes[0].PID = 0 },
		"hidden file name": func(m *Manifest) { m.Processes[0].Image = ".x" },
	} {
		m := good()
		mut(m)
		if err := m.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate = %v, want ErrInvalid", name, err)
		}
	}
}

func TestRestoreInitIsELF(t *testing.T) {
	path := filepath.Join(t.TempDir(), "init")
	if err := os.WriteFile(path, RestoreInit(), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC || len(f.Progs) != 1 || f.Entry != f.Progs[0].Vaddr+120 {
		t.Fatalf("unexpected ELF: %+v", f.FileHeader)
	}
	// On a Linux host there is no sys_checkpoint: the program must fail cleanly with status 5.
	out, err := exec.Command(path, t.TempDir()).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 5 || string(out) != restoreInitMsg {
		t.Fatalf("restore init on the host: %v, %q", err, out)
	}
}

func TestCheckDirSizesOnly(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ck")
	if err := SplitStream(bytes.NewReader(writeTree(t)), dir); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckDir(dir); err != nil {
		t.Fatalf("CheckDir of an intact checkpoint = %v", err)
	}
	img := filepath.Join(dir, ImageName(1))
	f, _ := os.OpenFile(img, os.O_WRONLY, 0)
	f.WriteAt([]byte{1}, 100) // Same size, other bytes: only VerifyDir sees it.
	f.Close()
	if _, err := CheckDir(dir); err != nil {
		t.Fatalf("CheckDir read content: %v", err)
	}
	st, _ := os.Stat(img)
	if err := os.Truncate(img, st.Size()-1); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckDir(dir); err == nil || !strings.Contains(err.Error(), "the manifest says") {
		t.Fatalf("CheckDir of a truncated image = %v", err)
	}
	os.Remove(img)
	if _, err := CheckDir(dir); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("CheckDir without the image = %v", err)
	}
}

// TestFreezeHelperIsELF: the freeze helper is a valid executable whose flags land in the call,
// and on a Linux host (no sys_checkpoint) it exits with the call's errno, ENOSYS (38).
func TestFreezeHelperIsELF(t *testing.T) {
	for _, flags := range []uint32{0, 1} {
		path := filepath.Join(t.TempDir(), "helper")
		b := FreezeHelper(flags)
		if err := os.WriteFile(path, b, 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := elf.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC || len(f.Progs) != 1 {
			t.Fatalf("unexpected ELF: %+v", f.FileHeader)
		}
		// mov $flags, %r10d: 41 ba imm32.
		if i := bytes.Index(b, []byte{0x41, 0xba}); i < 0 || binary.LittleEndian.Uint32(b[i+2:]) != flags {
			t.Fatalf("flags %d not in the call", flags)
		}
		err = exec.Command(path).Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 38 {
			t.Fatalf("freeze helper on the host: %v, want exit status 38 (ENOSYS)", err)
		}
	}
}
