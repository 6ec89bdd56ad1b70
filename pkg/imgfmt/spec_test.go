package imgfmt

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// These tests keep docs/image-format.md, the golden image and the code in agreement.

var update = flag.Bool("update", false, "rewrite testdata/golden-*.img and the fuzz seed corpus")

const (
	specPath   = "../../docs/image-format.md"
	goldenPath = "testdata/golden-basic.img"
)

// minimalProcess is the smallest feature set: one thread without FP/XSAVE state, no fds, no
// siginfo, no working directory (so a format 1.0 image), one MapZero mapping (so no segment data
// at all).
func minimalProcess() *Process {
	p := testProcess()
	p.Threads = p.Threads[1:2]
	p.Files = nil
	p.SigInfo = nil
	p.Mappings = p.Mappings[2:3]
	p.Creds.Groups = nil
	p.Auxv = nil
	p.VM.Exe = nil
	p.Cwd = nil
	return p
}

func TestGoldenImage(t *testing.T) {
	for _, g := range []struct {
		path string
		p    func() *Process
	}{{goldenPath, testProcess}, {"testdata/golden-minimal.img", minimalProcess}} {
		img := encodeToBytes(t, g.p())
		if *update {
			if err := os.WriteFile(g.path, img, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		golden, err := os.ReadFile(g.path)
		if err != nil {
			t.Fatalf("%v (run go test -run TestGoldenImage -update to create it)", err)
		}
		if !bytes.Equal(img, golden) {
			i := 0
			for i < len(img) && i < len(golden) && img[i] == golden[i] {
				i++
			}
			t.Fatalf("encoding differs from %s at byte %#x (len %d vs %d): the byte layout changed; if intended, bump the format version, update docs/image-format.md and rerun with -update", g.path, i, len(img), len(golden))
		}
		q, err := Decode(bytes.NewReader(golden), int64(len(golden)))
		if err != nil {
			t.Fatalf("Decode(%s): %v", g.path, err)
		}
		if !reflect.DeepEqual(stripData(q), stripData(g.p())) {
			t.Fatalf("%s decodes to a different process", g.path)
		}
	}
}

// specConstants are the constants the spec's "Constants (checked)" table must list.
var specConstants = map[string]uint64{
	"PageSize": PageSize, "FormatMajor": FormatMajor, "FormatMinor": FormatMinor,
	"NoteVersion": NoteVersion, "NoteProcess": NoteProcess, "NoteThread": NoteThread, "NoteSignals": NoteSignals,
	"NoteFD": NoteFD, "NoteVM": NoteVM, "NoteMapping": NoteMapping, "NoteCwd": NoteCwd, "NoteObject": NoteObject,
	"prpsinfoSize": prpsinfoSize, "prstatusSize": prstatusSize, "fxsaveSize": fxsaveSize, "siginfoSize": siginfoSize,
	"handleSize": handleSize, "versionFixedSize": versionFixedSize, "processFixedSize": processFixedSize,
	"threadSize": threadSize, "signalsSize": signalsSize, "fdFixedSize": fdFixedSize, "vmFixedSize": vmFixedSize,
	"mappingFixedSize": mappingFixedSize, "cwdFixedSize": cwdFixedSize, "objectFixedSize": objectFixedSize, "objectFDSize": objectFDSize,
	"MaxObjects": MaxObjects, "MaxObjectData": MaxObjectData, "MaxUserAddress": MaxUserAddress, "MaxThreads": MaxThreads,
	"MaxMappings": MaxMappings, "MaxFDs": MaxFDs, "MaxPathLen": MaxPathLen, "MaxNameLen": MaxNameLen,
	"MaxArgsLen": MaxArgsLen, "MaxPlatformLen": MaxPlatformLen, "MaxGroups": MaxGroups, "MaxAuxv": MaxAuxv,
	"MaxXStateSize": MaxXStateSize, "MaxNotesSize": MaxNotesSize,
	"NoteParent": NoteParent, "NoteDelta": NoteDelta, "parentFixedSize": parentFixedSize,
	"deltaFixedSize": deltaFixedSize, "deltaRunSize": deltaRunSize, "MaxChainDepth": MaxChainDepth,
}

func readSpec(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatalf("reading the spec: %v", err)
	}
	return string(b)
}

func TestSpecConstants(t *testing.T) {
	spec := readSpec(t)
	row := regexp.MustCompile("(?m)^\\| `(\\w+)` \\| `(0x[0-9a-f]+|\\d+)` \\|")
	seen := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(spec, -1) {
		want, ok := specConstants[m[1]]
		if !ok {
			t.Errorf("spec lists %s, which the test does not know", m[1])
			continue
		}
		v, err := strconv.ParseUint(m[2], 0, 64)
		if err != nil {
			t.Fatal(err)
		}
		if v != want {
			t.Errorf("spec says %s = %s, code says %#x", m[1], m[2], want)
		}
		seen[m[1]] = true
	}
	for name := range specConstants {
		if !seen[name] {
			t.Errorf("spec's constants table lacks %s", name)
		}
	}
}

func TestSpecExampleMatchesGolden(t *testing.T) {
	spec := readSpec(t)
	_, example, ok := strings.Cut(spec, "## 10. Example")
	if !ok {
		t.Fatal("spec has no example section")
	}
	var want []byte
	line := regexp.MustCompile(`(?m)^([0-9a-f]{8})  ([0-9a-f ]+)$`)
	for _, m := range line.FindAllStringSubmatch(example, -1) {
		off, _ := strconv.ParseUint(m[1], 16, 64)
		if int(off) != len(want) {
			t.Fatalf("example line at %s is not contiguous", m[1])
		}
		b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(m[2]), " ", ""))
		if err != nil {
			t.Fatalf("example line %s: %v", m[1], err)
		}
		want = append(want, b...)
	}
	if len(want) != elfHeaderSize+2*phdrSize {
		t.Fatalf("example holds %d bytes, want %d", len(want), elfHeaderSize+2*phdrSize)
	}
	golden, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(golden[:len(want)], want) {
		t.Errorf("spec example differs from the golden image; golden:\n%s", hex.Dump(golden[:len(want)]))
	}
}

// TestNoteSizesMatchSpec checks the encoded size of every note against the spec's sizes.
func TestNoteSizesMatchSpec(t *testing.T) {
	p := testProcess()
	img := encodeToBytes(t, p)
	notesOff := int64(elfHeaderSize + phdrSize*(1+len(p.Mappings)))
	notesSize := int64(binary.LittleEndian.Uint64(img[elfHeaderSize+32:]))
	it := &noteIter{b: img[notesOff : notesOff+notesSize], base: notesOff}
	strs := func(ss ...string) int {
		n := 0
		for _, s := range ss {
			n += 4 + len(s)
		}
		return n
	}
	var got []int
	for {
		n, ok := it.peek()
		if !ok {
			break
		}
		got = append(got, len(n.desc))
		it.cur.valid = false
	}
	want := []int{prpsinfoSize, prstatusSize, fxsaveSize, len(p.Threads[0].XState), prstatusSize,
		(len(p.Auxv) + 1) * auxEntrySize, nfileHeaderSize + 2*nfileEntrySize + 2*len("/bin/prog\x00"), siginfoSize,
		versionFixedSize + strs(p.Info.Platform),
		processFixedSize + 4*len(p.Creds.Groups) + strs(p.Info.Name, p.Info.Args),
		threadSize, threadSize, signalsSize}
	for _, f := range p.Files {
		want = append(want, fdFixedSize+strs(f.Desc, handlePath(f.Handle)))
	}
	want = append(want, vmFixedSize+strs(p.VM.Exe.Path))
	for _, m := range p.Mappings {
		want = append(want, mappingFixedSize+strs(m.Name, handlePath(m.File)))
	}
	want = append(want, cwdFixedSize+strs(p.Cwd.Path))
	if it.err != nil {
		t.Fatal(it.err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("note sizes\n got %v\nwant %v", got, want)
	}
}
