package treefmt

import (
	"bytes"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var bothDigests = []DigestAlg{DigestCRC32C, DigestSHA256}

// digestOf returns the digest with alg of data written in one piece.
func digestOf(alg DigestAlg, data []byte) FileDigest {
	d := NewDigest(alg)
	d.Write(data)
	return d.Sum()
}

// TestDigestDetectsDamage: for each algorithm, a flipped byte (in data, or in what was a hole), a
// block moved (into a hole, or two blocks swapped), a file cut short (by a byte, by a block) or
// grown by zeros each change the digest.
func TestDigestDetectsDamage(t *testing.T) {
	const blk = digestBlock
	rng := rand.New(rand.NewSource(7))
	base := make([]byte, 16*blk+100)
	rng.Read(base)
	clear(base[4*blk : 8*blk]) // A hole of four blocks.
	mutations := []struct {
		name string
		f    func(b []byte) []byte
	}{
		{"flipped byte at 0", func(b []byte) []byte { b[0] ^= 1; return b }},
		{"flipped bit mid-block", func(b []byte) []byte { b[10*blk+1234] ^= 0x80; return b }},
		{"flipped byte in the last partial block", func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }},
		{"byte written into the hole", func(b []byte) []byte { b[5*blk+7] = 1; return b }},
		{"block moved into the hole", func(b []byte) []byte {
			copy(b[6*blk:7*blk], b[2*blk:3*blk])
			clear(b[2*blk : 3*blk])
			return b
		}},
		{"two blocks swapped", func(b []byte) []byte {
			tmp := append([]byte{}, b[1*blk:2*blk]...)
			copy(b[1*blk:2*blk], b[9*blk:10*blk])
			copy(b[9*blk:10*blk], tmp)
			return b
		}},
		{"cut by a byte", func(b []byte) []byte { return b[:len(b)-1] }},
		{"cut to a block", func(b []byte) []byte { return b[:16*blk] }},
		{"cut into the hole", func(b []byte) []byte { return b[:6*blk] }},
		{"grown by zeros", func(b []byte) []byte { return append(b, make([]byte, blk)...) }},
	}
	for _, alg := range bothDigests {
		want := digestOf(alg, base)
		if want != refDigest(alg, base) {
			t.Fatalf("%s: %s, by definition %s", alg, want, refDigest(alg, base))
		}
		seen := map[FileDigest]string{want: "intact"}
		for _, m := range mutations {
			b := m.f(append([]byte{}, base...))
			got := digestOf(alg, b)
			if got == want {
				t.Errorf("%s: %s: digest unchanged", alg, m.name)
			}
			if prev, dup := seen[got]; dup {
				t.Errorf("%s: %s and %s have the same digest", alg, m.name, prev)
			}
			seen[got] = m.name
		}
	}
}

// TestDigestHoleEqualsZerosBoth: for each algorithm, a hole digests as written zeros, and the same
// data shifted by one byte does not.
func TestDigestHoleEqualsZerosBoth(t *testing.T) {
	for _, alg := range bothDigests {
		a, b, c := NewDigest(alg), NewDigest(alg), NewDigest(alg)
		a.Write([]byte("abc"))
		a.Hole(10000)
		a.Write([]byte("xyz"))
		b.Write([]byte("abc"))
		b.Write(make([]byte, 10000))
		b.Write([]byte("xyz"))
		c.Write([]byte("abc"))
		c.Hole(10001)
		c.Write([]byte("xyz"))
		if a.Sum() != b.Sum() || c.Sum() == a.Sum() {
			t.Errorf("%s: hole %s, zeros %s, shifted %s", alg, a.Sum(), b.Sum(), c.Sum())
		}
	}
}

func TestParseDigest(t *testing.T) {
	for in, want := range map[string]DigestAlg{"crc32c": DigestCRC32C, "sha256": DigestSHA256, "crc32c-sparse": DigestCRC32C, "sha256-sparse": DigestSHA256} {
		if got, err := ParseDigestAlg(in); err != nil || got != want {
			t.Errorf("ParseDigestAlg(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "md5", "CRC32C", "sha-256", "crc32"} {
		if _, err := ParseDigestAlg(in); err == nil || !strings.Contains(err.Error(), "crc32c or sha256") {
			t.Errorf("ParseDigestAlg(%q) = %v, want an error listing the choices", in, err)
		}
	}
	sha := strings.Repeat("ab", 32)
	for in, want := range map[string]FileDigest{
		"crc32c-sparse:0123abcd": {DigestCRC32C, "0123abcd"},
		"sha256-sparse:" + sha:   {DigestSHA256, sha},
	} {
		got, err := ParseFileDigest(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("ParseFileDigest(%q) = %v, %v", in, got, err)
		}
	}
	for in, why := range map[string]string{
		"0123abcd":                     "ALGORITHM:HEX",
		"xxh3-sparse:0123456789abcdef": `unknown digest algorithm "xxh3-sparse" (this build knows crc32c-sparse, sha256-sparse)`,
		"crc32c-sparse:0123abc":        "not 8 lower-case hex digits",
		"crc32c-sparse:0123ABCD":       "not 8 lower-case hex digits",
		"crc32c-sparse:0123abcg":       "not 8 lower-case hex digits",
		"sha256-sparse:0123abcd":       "not 64 lower-case hex digits",
		"crc32c:0123abcd":              "unknown digest algorithm",
	} {
		if _, err := ParseFileDigest(in); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("ParseFileDigest(%q) = %v, want an error saying %q", in, err, why)
		}
	}
}

// TestManifestDigestFields: where each algorithm's digest goes, the version it needs, and what
// Validate refuses.
func TestManifestDigestFields(t *testing.T) {
	good := func() *Manifest {
		return &Manifest{Format: FormatName, Version: Version, Processes: []Process{
			{PID: 1, PGID: 1, SID: 1, TIDs: []int32{1}, Comm: "a", Image: "pid-1.img", ImageSize: 1},
		}}
	}
	crc := FileDigest{DigestCRC32C, "89abcdef"}
	sha := FileDigest{DigestSHA256, strings.Repeat("0", 64)}

	// SHA-256 goes where every version has it, and needs no new version.
	m := good()
	m.Processes[0].SetDigest(sha)
	m.RaiseVersion()
	if m.Processes[0].ImageSHA256 != sha.Hex || m.Processes[0].ImageDigest != "" || m.Version != Version {
		t.Errorf("SHA-256: %+v version %d", m.Processes[0], m.Version)
	}
	if err := m.Validate(); err != nil {
		t.Error(err)
	}
	// CRC-32C goes into image_digest and makes the manifest version 5, which a build that knows
	// only versions up to 4 refuses by its version.
	m = good()
	m.Processes[0].SetDigest(crc)
	if err := m.Validate(); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "needs manifest version 5") {
		t.Errorf("CRC-32C digest in version %d: Validate = %v", m.Version, err)
	}
	m.RaiseVersion()
	if m.Processes[0].ImageDigest != "crc32c-sparse:89abcdef" || m.Processes[0].ImageSHA256 != "" || m.Version != VersionDigest {
		t.Errorf("CRC-32C: %+v version %d", m.Processes[0], m.Version)
	}
	if err := m.Validate(); err != nil {
		t.Error(err)
	}
	if d, err := m.Processes[0].RecordedDigest(); err != nil || d != crc {
		t.Errorf("RecordedDigest = %v, %v", d, err)
	}
	// A SHA-256 in the new field is read as well.
	m.Processes[0].ImageDigest = sha.String()
	if d, err := m.Processes[0].RecordedDigest(); err != nil || d != sha || m.Validate() != nil {
		t.Errorf("sha256-sparse in image_digest: %v, %v, %v", d, err, m.Validate())
	}
	for name, tc := range map[string]struct {
		mut  func(p *Process)
		want string
	}{
		"both":              {func(p *Process) { p.ImageSHA256 = sha.Hex }, "both a SHA-256 and a digest"},
		"none":              {func(p *Process) { p.ImageDigest = "" }, "missing its digest"},
		"unknown algorithm": {func(p *Process) { p.ImageDigest = "md5-sparse:" + strings.Repeat("0", 32) }, `unknown digest algorithm "md5-sparse"`},
		"short value":       {func(p *Process) { p.ImageDigest = "crc32c-sparse:89ab" }, "not 8 lower-case hex digits"},
		"short SHA-256":     {func(p *Process) { p.ImageDigest, p.ImageSHA256 = "", "0123" }, "not 64 hex digits"},
	} {
		c := *m
		c.Processes = []Process{m.Processes[0]}
		tc.mut(&c.Processes[0])
		if err := c.Validate(); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "pid 1") {
			t.Errorf("%s: Validate = %v, want an error for pid 1 saying %q", name, err, tc.want)
		}
	}

	// NeededVersion of each feature.
	m = good()
	m.Processes[0].SetDigest(sha)
	for _, tc := range []struct {
		mut  func(m *Manifest)
		want int
	}{
		{func(m *Manifest) {}, 1},
		{func(m *Manifest) { m.Filesystems = []FilesystemArchive{{}} }, 2},
		{func(m *Manifest) { m.Parent = &ParentDir{} }, VersionParent},
		{func(m *Manifest) { m.Processes[0].Stopped = &Stop{Signal: 19} }, VersionStopped},
		{func(m *Manifest) { m.Filesystems = []FilesystemArchive{{Digest: crc.String()}} }, VersionDigest},
		{func(m *Manifest) { m.Processes[0].SetDigest(crc) }, VersionDigest},
	} {
		c := *m
		c.Processes = []Process{m.Processes[0]}
		tc.mut(&c)
		if got := c.NeededVersion(); got != tc.want {
			t.Errorf("NeededVersion = %d, want %d (%+v)", got, tc.want, c)
		}
	}
}

// fixtureImage is the image of the manifest fixtures below: 12 bytes, a 10000-byte hole, 3000
// bytes of 0x42.
func fixtureImage() []byte {
	b := append([]byte("\x7fELF fixture"), make([]byte, 10000)...)
	return append(b, bytes.Repeat([]byte{0x42}, 3000)...)
}

// Manifests as the writers of each version wrote them for fixtureImage: version 2 (and every build
// before version 5) with image_sha256, and version 5 with a CRC-32C image_digest. The digests were
// computed independently of this package (Python: hashlib.sha256 and a bitwise CRC-32C over the
// definition's byte string), so the tests pin the definition, not just this implementation.
const (
	fixtureManifestV2 = `{
  "format": "runsc-ckpt-tree",
  "version": 2,
  "created": "2026-12-02T16:45:41.02Z",
  "root": 0,
  "hostname": "h",
  "processes": [
    {"pid": 1, "ppid": 0, "pgid": 1, "sid": 1, "tids": [1], "comm": "sh",
     "image": "pid-1.img", "image_size": 13012,
     "image_sha256": "e4cec4870651a4c9e4889be5e574c269dfdd525aa16dfbe42f8d085cfa91acbc"}
  ]
}
`
	fixtureManifestV5 = `{
  "format": "runsc-ckpt-tree",
  "version": 5,
  "created": "2026-12-03T16:45:41.02Z",
  "root": 0,
  "hostname": "h",
  "processes": [
    {"pid": 1, "ppid": 0, "pgid": 1, "sid": 1, "tids": [1], "comm": "sh",
     "image": "pid-1.img", "image_size": 13012,
     "image_digest": "crc32c-sparse:53fda299"}
  ]
}
`
)

// TestManifestFixtures: a manifest with a SHA-256 written before version 5 still verifies, as does
// one with a CRC-32C; a changed image byte fails each, naming the image and the algorithm; either
// goes through a stream and back.
func TestManifestFixtures(t *testing.T) {
	for _, tc := range []struct {
		manifest string
		alg      DigestAlg
	}{
		{fixtureManifestV2, DigestSHA256},
		{fixtureManifestV5, DigestCRC32C},
	} {
		t.Run(tc.alg.Flag(), func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, ManifestName), []byte(tc.manifest), 0o600)
			img := fixtureImage()
			os.WriteFile(filepath.Join(dir, ImageName(1)), img, 0o600)
			m, err := VerifyDir(dir)
			if err != nil {
				t.Fatalf("VerifyDir of the fixture: %v", err)
			}
			if d, _ := m.Processes[0].RecordedDigest(); d.Alg != tc.alg || d != digestOf(tc.alg, img) {
				t.Fatalf("recorded %v, computed %v", d, digestOf(tc.alg, img))
			}
			var stream bytes.Buffer
			if err := WriteStream(&stream, dir); err != nil {
				t.Fatal(err)
			}
			if err := SplitStream(bytes.NewReader(stream.Bytes()), filepath.Join(t.TempDir(), "again")); err != nil {
				t.Fatalf("split of the fixture's stream: %v", err)
			}
			img[20] = 1 // Inside the hole.
			os.WriteFile(filepath.Join(dir, ImageName(1)), img, 0o600)
			_, err = VerifyDir(dir)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "pid-1.img") || !strings.Contains(err.Error(), tc.alg.String()) || !strings.Contains(err.Error(), string(tc.alg)) {
				t.Fatalf("VerifyDir of a changed image = %v, want an error naming the image and %s", err, tc.alg)
			}
		})
	}
}

// TestStreamDigestAnnouncement: a stream splits and verifies whatever its header announces (the
// manifest decides: a file hashed with the announced algorithm is hashed again from disk when
// the manifest says another), and a changed byte is found in each case.
func TestStreamDigestAnnouncement(t *testing.T) {
	for _, tc := range []struct{ alg, announce DigestAlg }{
		{DigestCRC32C, DigestCRC32C},
		{DigestSHA256, DigestSHA256},
		{DigestCRC32C, DigestSHA256}, // What an older writer's header (flags 0) would say.
		{DigestSHA256, DigestCRC32C},
	} {
		t.Run(tc.alg.Flag()+"-announced-"+tc.announce.Flag(), func(t *testing.T) {
			stream := writeTreeAlg(t, tc.alg, tc.announce)
			dir := filepath.Join(t.TempDir(), "ck")
			if err := SplitStream(bytes.NewReader(stream), dir); err != nil {
				t.Fatal(err)
			}
			m, err := VerifyDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if algs := m.DigestAlgs(); len(algs) != 1 || algs[0] != tc.alg {
				t.Fatalf("manifest digests %v", algs)
			}
			corrupt := append([]byte{}, stream...)
			at := bytes.Index(corrupt, []byte("ELF header"))
			corrupt[at] = 'X'
			err = SplitStream(bytes.NewReader(corrupt), filepath.Join(t.TempDir(), "ck"))
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.alg.String()) {
				t.Fatalf("split of a corrupted stream = %v, want ErrInvalid naming %s", err, tc.alg)
			}
		})
	}
}

// TestStreamHeaderAnnounces: the header's flags word says CRC-32C (bit 0) or nothing (SHA-256, as
// older writers left it 0).
func TestStreamHeaderAnnounces(t *testing.T) {
	for alg, want := range map[DigestAlg]byte{DigestCRC32C: 1, DigestSHA256: 0} {
		var buf bytes.Buffer
		sw := NewStreamWriter(&buf)
		sw.SetDigest(alg)
		sw.End()
		h := buf.Bytes()
		if len(h) < 16 || h[12] != want || h[13] != 0 || h[14] != 0 || h[15] != 0 {
			t.Errorf("%s: header % x, want flags %d", alg, h[:16], want)
		}
		var got DigestAlg
		if err := readStream(bytes.NewReader(h), func(hd streamHeader) { got = hd.digest }, nil, nil); err != nil || got != alg {
			t.Errorf("%s: read back %q, %v", alg, got, err)
		}
	}
}
