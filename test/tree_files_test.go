package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// TestTreeImageFDs: CKPT_FREEZE_TREE with image fds from inside the sandbox
// (test/guests/tree_image_fds.c): bad image fds fail with EBADF or EINVAL before anything is
// frozen; a good one receives the image, and the stream only names it (a SLOT record).
func TestTreeImageFDs(t *testing.T) {
	guest := h.BuildC(t, "tree_image_fds")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		r := h.Do(t, harness.Opts{Platform: p, Persist: true}, guest)
		r.WantExit(t, 0)
		want := "not_open_ebadf=1\npipe_einval=1\nnot_empty_einval=1\nsame_file_einval=1\ntoo_many_einval=1\n" +
			"unknown_flag_einval=1\nfreeze_ok=1\nimage_is_elf=1\nstream_has_slot=1\nok\n"
		if r.Stdout != want {
			t.Errorf("guest output:\n%s\nwant:\n%s", r.Stdout, want)
		}
	})
}

// TestTreeCheckpointImageFilesMixed: a container checkpoint whose images go partly into image
// files (here only the first, RUNSC_CKPT_TREE_IMAGE_FILES=1) and partly through the stream, and
// one with no image files at all, are complete checkpoints: every digest in the manifest matches
// (VerifyDir reads every image back, so the sentry's digests of images it wrote into files are
// checked here), no hidden staging file or directory is left, and the mixed one restores with every process.
func TestTreeCheckpointImageFilesMixed(t *testing.T) {
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := startTree(t, p, restoreScript)
		for _, n := range []string{"1", "0"} {
			t.Setenv("RUNSC_CKPT_TREE_IMAGE_FILES", n)
			dir := filepath.Join(h.NewDir(t), "ckpt")
			a.MustRun(t, "checkpoint", "--format=elf", "--leave-running", "--image-path", dir, a.ID)
			m, err := treefmt.VerifyDir(dir)
			if err != nil {
				t.Fatalf("%s image files: %v", n, err)
			}
			if len(m.Processes) < 3 {
				t.Fatalf("the checkpoint has %d processes; the test needs images both ways", len(m.Processes))
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), ".") {
					t.Errorf("%s image files: %s left in the image directory", n, e.Name())
				}
			}
			// The sentry's log says how many images went into files.
			if !logsContain(t, a.LogDir, fmt.Sprintf(" image bytes, %s images in image files;", n)) {
				t.Errorf("with %s image files: no freeze log line says %s images went into image files", n, n)
			}
			if n != "1" {
				continue
			}
			b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Args: []string{"/nonexistent-never-run"}})
			b.MustRun(t, "restore", "--image-path", dir, "--bundle", a.Bundle, "--detach", b.ID)
			checkRestored(t, b, m)
		}
	})
}

// logsContain reports whether a file in dir contains s.
func logsContain(t *testing.T, dir, s string) bool {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil && strings.Contains(string(b), s) {
			return true
		}
	}
	return false
}
