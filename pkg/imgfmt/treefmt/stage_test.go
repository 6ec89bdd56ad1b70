package treefmt

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeSlotTree writes a three-process checkpoint as the sentry does with image files: the images
// of pids 1 and 2 into files[0] and files[1] (SLOT records), pid 3's into the stream, and returns
// the stream, every digest with alg.
func writeSlotTree(t *testing.T, files []*os.File, alg DigestAlg) []byte {
	t.Helper()
	var buf bytes.Buffer
	sw := NewStreamWriter(&buf)
	sw.SetDigest(alg)
	m := &Manifest{Format: FormatName, Version: Version, Hostname: "h"}
	for i, pid := range []int32{1, 2, 3} {
		var hs *HashingSink
		if i < len(files) {
			hs = &HashingSink{W: NewSparseFile(files[i]), Alg: alg, Parallel: true}
		} else {
			if err := sw.BeginFile(ImageName(pid)); err != nil {
				t.Fatal(err)
			}
			hs = &HashingSink{W: sw, Alg: alg, Parallel: true}
		}
		hs.Write([]byte("ELF header"))
		hs.Hole(1 << 20)
		hs.Write(bytes.Repeat([]byte{byte(pid)}, 300<<10)) // Hashed on another goroutine.
		if i < len(files) {
			if err := sw.Slot(ImageName(pid), i); err != nil {
				t.Fatal(err)
			}
		}
		sum, size := hs.Result()
		m.Processes = append(m.Processes, Process{PID: pid, PPID: min(pid-1, 1), PGID: 1, SID: 1, TIDs: []int32{pid}, Comm: "p", Image: ImageName(pid), ImageSize: size})
		m.Processes[len(m.Processes)-1].SetDigest(sum)
	}
	m.Processes[0].PPID = 0
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

// TestStageImageFiles: images written into image files and into the stream make one checkpoint
// that VerifyDir accepts (so the digests computed in parallel are right), with either digest;
// unused image files disappear; a SLOT record is refused where there are no image files.
func TestStageImageFiles(t *testing.T) {
	for _, alg := range []DigestAlg{DigestCRC32C, DigestSHA256} {
		t.Run(alg.Flag(), func(t *testing.T) { testStageImageFiles(t, alg) })
	}
}

func testStageImageFiles(t *testing.T, alg DigestAlg) {
	dir := filepath.Join(t.TempDir(), "checkpoint")
	st, err := NewStage(dir)
	if err != nil {
		t.Fatal(err)
	}
	files, err := st.ImageFiles(4)
	if err != nil {
		t.Fatal(err)
	}
	stream := writeSlotTree(t, files[:2], alg)
	if err := st.ReceiveReplace(bytes.NewReader(stream), nil); err != nil {
		t.Fatal(err)
	}
	st.Close()
	m, err := VerifyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Processes) != 3 {
		t.Fatalf("manifest has %d processes", len(m.Processes))
	}
	if algs := m.DigestAlgs(); len(algs) != 1 || algs[0] != alg {
		t.Errorf("manifest digests %v, want %s", algs, alg)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "manifest.json pid-1.img pid-2.img pid-3.img" {
		t.Errorf("directory holds %s", got)
	}

	// Without image files, the same stream is malformed.
	err = SplitStream(bytes.NewReader(stream), filepath.Join(t.TempDir(), "x"))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "SLOT") {
		t.Errorf("SplitStream of a stream with SLOT records = %v, want ErrInvalid", err)
	}
}

// TestStageImageFilesRejects: a SLOT record naming a file that does not exist, naming one twice or
// naming something else than an image fails the split and leaves the directory as it was.
func TestStageImageFilesRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(sw *StreamWriter) error
	}{
		{"index out of range", func(sw *StreamWriter) error { return sw.Slot(ImageName(1), 2) }},
		{"twice", func(sw *StreamWriter) error {
			if err := sw.Slot(ImageName(1), 0); err != nil {
				return err
			}
			return sw.Slot(ImageName(2), 0)
		}},
		{"not an image", func(sw *StreamWriter) error { return sw.Slot(ManifestName, 0) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "checkpoint")
			st, err := NewStage(dir)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.ImageFiles(2); err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			sw := NewStreamWriter(&buf)
			if err := tc.write(sw); err != nil {
				t.Fatal(err)
			}
			sw.End()
			if err := st.ReceiveReplace(&buf, nil); !errors.Is(err, ErrInvalid) {
				t.Fatalf("ReceiveReplace = %v, want ErrInvalid", err)
			}
			st.Close()
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("a failed split left %d entries", len(ents))
			}
		})
	}
}
