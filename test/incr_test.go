package test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// Incremental checkpoints (docs/incremental.md): incr_chain freezes itself four times, each image
// incremental against the previous one. The chain thaws to the very memory of each step (the
// guest's checksum over all of it), on every platform; squash merges it into one complete image
// that thaws the same; a parent that changed makes the thaw fail with ESTALE, a malformed image or
// a parent that is no image with EINVAL.

// incrSums runs incr_chain into dir and returns the checksum each step printed.
func incrSums(t *testing.T, p, guest, dir string) []string {
	t.Helper()
	r := h.Do(t, harness.Opts{Platform: p, Persist: true}, guest, dir)
	r.WantExit(t, 0)
	var sums []string
	for step := 0; step <= 3; step++ {
		m := regexp.MustCompile(fmt.Sprintf(`(?m)^step=%d r=0 errno=0 sum=(\S+)$`, step)).FindStringSubmatch(r.Stdout)
		if m == nil {
			t.Fatalf("step %d did not freeze:\n%s", step, r)
		}
		sums = append(sums, m[1])
	}
	if !strings.Contains(r.Stdout, "frozen\n") {
		t.Fatalf("incr_chain did not finish:\n%s", r)
	}
	return sums
}

// wantThawed thaws img in a new sandbox and checks that it resumed in step with checksum sum.
func wantThawed(t *testing.T, p, img string, step int, sum string) {
	t.Helper()
	r := checkpt(t, p, "-r", img)
	r.WantExit(t, 0)
	if want := fmt.Sprintf("step=%d r=1 errno=0 sum=%s\nthawed\n", step, sum); !strings.Contains(r.Stdout, want) {
		t.Fatalf("thaw of %s: want %q:\n%s", img, want, r)
	}
}

// wantThawFails thaws img in a new sandbox and checks that checkpt failed with errno text why.
func wantThawFails(t *testing.T, p, img, why string) {
	t.Helper()
	r := checkpt(t, p, "-r", img)
	r.WantExit(t, 5)
	if !strings.Contains(r.Stderr, why) {
		t.Fatalf("thaw of %s: want the failure %q:\n%s", img, why, r)
	}
}

func TestIncrementalChain(t *testing.T) {
	guest := h.BuildC(t, "incr_chain")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		dir := h.NewDir(t)
		sums := incrSums(t, p, guest, dir)
		img := func(n int) string { return filepath.Join(dir, fmt.Sprintf("%d.img", n)) }

		// Each incremental image names its parent and is a small fraction of the full one.
		full := fileSize(t, img(0))
		for n := 1; n <= 3; n++ {
			q := decodeImage(t, img(n))
			if q.Parent == nil || q.Parent.Image.Path != img(n-1) {
				t.Fatalf("image %d: parent %+v, want %s", n, q.Parent, img(n-1))
			}
			if size := fileSize(t, img(n)); size*10 > full {
				t.Errorf("image %d is %d bytes, more than a tenth of the full image's %d", n, size, full)
			}
		}
		out, err := exec.Command(h.Bin, "inspect", "--chain", img(3)).CombinedOutput()
		if err != nil || !regexp.MustCompile(`(?m)^parent:\s+`+regexp.QuoteMeta(img(2))+` `).Match(out) ||
			!regexp.MustCompile(`(?m)^chain:\s+4 images`).Match(out) || !strings.Contains(string(out), img(0)) {
			t.Fatalf("inspect --chain %s: %v\n%s", img(3), err, out)
		}

		// The chain thaws to the memory of each step: image 1's big region is mapped lazily from
		// images 0 and 1 (81 ranges), image 3's is mapped from image 0 and patched (more than 256
		// ranges: thaw_incr.go).
		wantThawed(t, p, img(3), 3, sums[3])
		wantThawed(t, p, img(1), 1, sums[1])

		// Squash: one complete image that thaws the same.
		flat := filepath.Join(dir, "flat.img")
		if out, err := exec.Command(h.Bin, "squash", img(3), flat).CombinedOutput(); err != nil {
			t.Fatalf("squash: %v\n%s", err, out)
		}
		if q := decodeImage(t, flat); q.Parent != nil {
			t.Fatalf("the squashed image names a parent: %+v", q.Parent)
		}
		wantThawed(t, p, flat, 3, sums[3])

		// A malformed delta note: EINVAL.
		bad := filepath.Join(dir, "bad.img")
		b, err := os.ReadFile(img(2))
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(b, []byte("\x0b\x00\x43\x52RUNSC-CKPT\x00"))
		if i < 0 {
			t.Fatalf("image 2 has no delta note")
		}
		b[i+16+8] = 0xff // The run count.
		if err := os.WriteFile(bad, b, 0o600); err != nil {
			t.Fatal(err)
		}
		wantThawFails(t, p, bad, "invalid argument")

		// A parent that vanished, then one (further up the chain) that changed: ESTALE.
		if err := os.Remove(img(0)); err != nil {
			t.Fatal(err)
		}
		wantThawFails(t, p, img(1), "stale")
		if err := exec.Command("touch", "-d", "2001-01-01", img(1)).Run(); err != nil {
			t.Fatal(err)
		}
		wantThawFails(t, p, img(3), "stale")
		// The squashed image needs none of them.
		wantThawed(t, p, flat, 3, sums[3])
	})
}

// TestIncrementalCheckpt: `checkpt -c PID -o FILE --parent OLD` freezes another process
// incrementally; the image thaws; a parent that is not an image is refused with EINVAL.
func TestIncrementalCheckpt(t *testing.T) {
	sleeper := h.BuildC(t, "sleeper")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		dir := h.NewDir(t)
		full, incr, junk := filepath.Join(dir, "full.img"), filepath.Join(dir, "incr.img"), filepath.Join(dir, "junk")
		if err := os.WriteFile(junk, bytes.Repeat([]byte("junk"), 2048), 0o644); err != nil {
			t.Fatal(err)
		}
		// The sleeper must outlive three checkpt runs (seconds each on a loaded machine: with 2 s
		// it had exited before the third, ESRCH instead of EINVAL); its thaw sleeps the rest.
		script := fmt.Sprintf("%[1]s 12 & P=$!; sleep 0.5; %[2]s checkpt -c $P -o %[3]s; echo full=$?; %[2]s checkpt -c $P -o %[4]s --parent %[3]s; echo incr=$?; "+
			"%[2]s checkpt -c $P -o %[5]s.img --parent %[5]s; echo junk=$?; kill -9 $P",
			sleeper, h.Bin, full, incr, junk)
		r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c", script)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "full=0\n") || !strings.Contains(r.Stdout, "incr=0\n") || !strings.Contains(r.Stdout, "junk=5\n") {
			t.Fatalf("checkpt --parent:\n%s", r)
		}
		if !strings.Contains(r.Stderr, "invalid argument") {
			t.Errorf("checkpt's message for a parent that is no image:\n%s", r)
		}
		if q := decodeImage(t, incr); q.Parent == nil || q.Parent.Image.Path != full {
			t.Fatalf("incr.img does not name full.img as its parent: %+v", q.Parent)
		}
		if fi, fu := fileSize(t, incr), fileSize(t, full); fi >= fu {
			t.Errorf("the incremental image (%d bytes) is not smaller than the full one (%d)", fi, fu)
		}
		r = checkpt(t, p, "-r", incr)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "slept 12 s\n") {
			t.Errorf("the thawed sleeper did not finish:\n%s", r)
		}
	})
}

// fileSize returns the size of the file at path.
func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}
