package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// checkDigests checks that every image and archive of the checkpoint in dir records a digest of
// algorithm alg, in the field and manifest version that algorithm goes with, and that the
// checkpoint verifies. It returns the manifest.
func checkDigests(t *testing.T, dir string, alg treefmt.DigestAlg) *treefmt.Manifest {
	t.Helper()
	m, err := treefmt.VerifyDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if algs := m.DigestAlgs(); len(algs) != 1 || algs[0] != alg {
		t.Errorf("%s: digests %v, want %s", dir, algs, alg)
	}
	for _, p := range m.Processes {
		if p.Image == "" {
			continue
		}
		if sha := alg == treefmt.DigestSHA256; (p.ImageSHA256 != "") != sha || (p.ImageDigest != "") == sha {
			t.Errorf("pid %d: image_sha256 %q, image_digest %q for %s", p.PID, p.ImageSHA256, p.ImageDigest, alg)
		}
	}
	// A SHA-256 checkpoint stays readable by builds before version 5; any other needs it.
	if wantNew := alg != treefmt.DigestSHA256; (m.Version >= treefmt.VersionDigest) != wantNew {
		t.Errorf("%s: manifest version %d with %s digests", dir, m.Version, alg)
	}
	return m
}

// TestTreeDigestOCI: a container checkpoint records CRC-32C digests by default and SHA-256 ones
// with --ckpt-digest=sha256 (the global form engines pass; --digest is the same choice on the
// command) and with checkpt's --digest sha256 inside the sandbox; each restores, its digests
// verified (--verify-digests), with the same pids; inspect names the algorithm. A bad value is a
// usage error (exit 2) that leaves the container running.
func TestTreeDigestOCI(t *testing.T) {
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := startTree(t, p, restoreScript)
		dirC := filepath.Join(h.NewDir(t), "ckpt")
		a.MustRun(t, "checkpoint", "--format=elf", "--leave-running", "--image-path", dirC, a.ID)
		mC := checkDigests(t, dirC, treefmt.DigestCRC32C)
		dirS := filepath.Join(h.NewDir(t), "ckpt")
		a.MustRun(t, "--ckpt-digest=sha256", "checkpoint", "--format=elf", "--leave-running", "--image-path", dirS, a.ID)
		mS := checkDigests(t, dirS, treefmt.DigestSHA256)

		for _, bad := range [][]string{
			{"checkpoint", "--format=elf", "--leave-running", "--digest=md5", "--image-path", filepath.Join(h.NewDir(t), "x"), a.ID},
			{"--ckpt-digest=SHA256", "checkpoint", "--format=elf", "--leave-running", "--image-path", filepath.Join(h.NewDir(t), "x"), a.ID},
		} {
			r := a.Run(t, bad...)
			if r.ExitCode != 2 || !strings.Contains(r.Stderr, "want crc32c or sha256") {
				t.Errorf("%q: exit %d, stderr %q; want exit 2 and the choices", bad, r.ExitCode, lastLines(r.Stderr, 3))
			}
		}
		if st := a.State(t); st.Status != "running" {
			t.Fatalf("original is %q after the checkpoints", st.Status)
		}

		// Inside the sandbox: checkpt's tree freeze, both ways.
		dirG := filepath.Join(a.Dir, "tree-sha256")
		a.Exec(t, h.Bin, "checkpt", "-c", "-t", "0", "-o", dirG, "--digest", "sha256").WantExit(t, 0)
		checkDigests(t, dirG, treefmt.DigestSHA256)
		dirGC := filepath.Join(a.Dir, "tree-default")
		a.Exec(t, h.Bin, "checkpt", "-c", "-t", "0", "-o", dirGC).WantExit(t, 0)
		checkDigests(t, dirGC, treefmt.DigestCRC32C)
		for dir, want := range map[string]string{dirC: "CRC-32C (crc32c-sparse), verified", dirG: "SHA-256 (sha256-sparse), verified"} {
			out, err := exec.Command(h.Bin, "inspect", dir).CombinedOutput()
			if err != nil || !strings.Contains(string(out), want) {
				t.Errorf("inspect %s: %v, want %q in\n%s", dir, err, want, out)
			}
		}

		for _, tc := range []struct {
			dir string
			m   *treefmt.Manifest
		}{{dirC, mC}, {dirS, mS}} {
			b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Args: []string{"/nonexistent-never-run"}})
			b.MustRun(t, "restore", "--verify-digests", "--image-path", tc.dir, "--bundle", a.Bundle, "--detach", b.ID)
			checkRestored(t, b, tc.m)
			b.Delete(t, true)
		}
	})
}

// TestTreeDigestTampered: an image changed after the checkpoint (one byte, same size) fails
// `restore --verify-digests` and a restore from a stream with a message naming the image and the
// digest's algorithm, for each algorithm, and leaves no container behind.
func TestTreeDigestTampered(t *testing.T) {
	p := "systrap"
	a := startTree(t, p, restoreScript)
	for _, tc := range []struct {
		alg   treefmt.DigestAlg
		flags []string
	}{
		{treefmt.DigestCRC32C, nil},
		{treefmt.DigestSHA256, []string{"--digest=sha256"}},
	} {
		t.Run(tc.alg.Flag(), func(t *testing.T) {
			dir := filepath.Join(h.NewDir(t), "ckpt")
			a.MustRun(t, append(append([]string{"checkpoint", "--format=elf", "--leave-running"}, tc.flags...), "--image-path", dir, a.ID)...)
			m := checkDigests(t, dir, tc.alg)
			var img string
			for _, pr := range m.Processes {
				if pr.Image != "" {
					img = filepath.Join(dir, pr.Image)
					break
				}
			}
			f, err := os.OpenFile(img, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			var c [1]byte
			if _, err := f.ReadAt(c[:], 300); err != nil {
				t.Fatal(err)
			}
			c[0] ^= 0x20
			if _, err := f.WriteAt(c[:], 300); err != nil {
				t.Fatal(err)
			}
			f.Close()
			want := []string{filepath.Base(img), "does not match the manifest's " + tc.alg.String() + " digest (" + string(tc.alg) + ")"}

			b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Args: []string{"/nonexistent-never-run"}})
			r := b.Run(t, "restore", "--verify-digests", "--image-path", dir, "--bundle", a.Bundle, "--detach", b.ID)
			for _, w := range want {
				if r.ExitCode == 0 || !strings.Contains(r.Stderr, w) {
					t.Errorf("restore --verify-digests of a tampered %s checkpoint: exit %d, stderr %q; want a failure naming %q", tc.alg, r.ExitCode, lastLines(r.Stderr, 3), w)
				}
			}
			if cs := b.Containers(t); len(cs) != 0 {
				t.Errorf("containers left behind: %v", cs)
			}

			// The same checkpoint as a stream (the tampered image goes through as it is).
			stream := filepath.Join(h.NewDir(t), "stream")
			writeStreamOf(t, stream, dir, m)
			in, err := os.Open(stream)
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			cmd := exec.Command(h.Bin, "--root="+b.Root, "--platform="+p, "--network=none", "--overlay2=none",
				"restore", "--image-path", "-", "--bundle", a.Bundle, "--detach", b.ID)
			cmd.Stdin = in
			// A file, not a pipe: had the restore succeeded, the container would keep its stdout.
			outPath := filepath.Join(h.NewDir(t), "restore.out")
			outF, err := os.Create(outPath)
			if err != nil {
				t.Fatal(err)
			}
			defer outF.Close()
			cmd.Stdout, cmd.Stderr = outF, outF
			err = cmd.Run()
			out, _ := os.ReadFile(outPath)
			for _, w := range want {
				if err == nil || !strings.Contains(string(out), w) {
					t.Errorf("restore of a tampered %s stream: %v, output %q; want a failure naming %q", tc.alg, err, lastLines(string(out), 3), w)
				}
			}
			if cs := b.Containers(t); len(cs) != 0 {
				t.Errorf("containers left behind after the stream: %v", cs)
			}
		})
	}
}

// writeStreamOf writes the files of the checkpoint in dir (manifest m) as a tree stream into the
// file path, as they are (treefmt.WriteStream would verify them first), announcing m's digest.
func writeStreamOf(t *testing.T, path, dir string, m *treefmt.Manifest) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sw := treefmt.NewStreamWriter(f)
	if algs := m.DigestAlgs(); len(algs) == 1 {
		sw.SetDigest(algs[0])
	}
	var names []string
	for _, p := range m.Processes {
		if p.Image != "" {
			names = append(names, p.Image)
		}
	}
	for _, fa := range m.Filesystems {
		names = append(names, fa.Archive)
	}
	for _, n := range append(names, treefmt.ManifestName) {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := sw.BeginFile(n); err != nil {
			t.Fatal(err)
		}
		if _, err := sw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.End(); err != nil {
		t.Fatal(err)
	}
}
