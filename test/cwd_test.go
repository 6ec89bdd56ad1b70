package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// TestThawCwd: a guest chdir()s into a subdirectory and freezes; `checkpt -r`, started in a new
// sandbox from a different working directory, thaws it, and the thawed guest's getcwd() is the
// directory it froze in, where a relative open finds the file it found before. inspect shows the
// directory. An image whose directory was removed (or replaced by a file) is refused with ESTALE
// and the thawer keeps running.
func TestThawCwd(t *testing.T) {
	guest := h.BuildC(t, "cwd")
	bad := h.BuildC(t, "thaw_bad")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		dir := h.NewDir(t)
		img, sub, elsewhere := filepath.Join(dir, "cwd.ckpt"), filepath.Join(dir, "work", "sub"), filepath.Join(dir, "elsewhere")
		for _, d := range []string{sub, elsewhere} {
			if err := os.MkdirAll(d, 0o777); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(sub, "note.txt"), []byte("found-in-sub\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		// The thawer's own directory has a note.txt too: finding it would mean the cwd was not restored.
		if err := os.WriteFile(filepath.Join(elsewhere, "note.txt"), []byte("found-elsewhere\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		frozen := frozenGuest(t, p, "r=0 errno=0", guest, img, sub)
		cwd := field(frozen.Stdout, "cwd")
		if !strings.HasSuffix(cwd, "/work/sub") || field(frozen.Stdout, "note") != "found-in-sub" {
			t.Fatalf("the guest was not in its directory before the freeze:\n%s", frozen)
		}
		if out := runTool(t, h.Bin, "inspect", img); !strings.Contains(out, "cwd:") || !strings.Contains(out, cwd) || !strings.Contains(out, "format 1.3") {
			// 1.3, not 1.1: the guest's ELF mappings keep their header pages (format 1.3).
			t.Errorf("inspect does not show the working directory %q:\n%s", cwd, out)
		}

		r := h.Do(t, harness.Opts{Platform: p, Persist: true, Cwd: elsewhere}, h.Bin, "checkpt", "-r", img)
		r.WantExit(t, 0)
		if want := "r=1 errno=0 cwd=" + cwd + " note=found-in-sub\n"; !strings.Contains(r.Stdout, want) {
			t.Errorf("thawed guest: want %q:\n%s", want, r)
		}

		// The directory is gone: ESTALE, the caller (started elsewhere) keeps running.
		if err := os.RemoveAll(sub); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name  string
			setup func() error
		}{
			{"removed", func() error { return nil }},
			{"replaced_by_file", func() error { return os.WriteFile(sub, []byte("not a dir\n"), 0o644) }},
		} {
			t.Run(c.name, func(t *testing.T) {
				if err := c.setup(); err != nil {
					t.Fatal(err)
				}
				r := h.Do(t, harness.Opts{Platform: p, Persist: true, Cwd: elsewhere}, bad, img)
				r.WantExit(t, 0)
				if !strings.Contains(r.Stdout, "thaw=-1 errno=ESTALE\nalive canary=5eed\n") {
					t.Errorf("want ESTALE and a living caller:\n%s", r)
				}
			})
		}
	})
}
