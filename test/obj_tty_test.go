package test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// TestObjTerminalUnsupported shows the documented behaviour of a process holding both ends of a
// pseudo-terminal (terminals are not restored, docs/notes-thaw.md "Terminals"): the thaw
// succeeds and both fds are placeholders (EOF), never reopened by path (which failed the thaw
// with ESTALE in the same sandbox, or named whatever terminal had the index).
func TestObjTerminalUnsupported(t *testing.T) {
	guest := h.BuildC(t, "obj_tty")
	const want = "master=1 replica=1"
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		t.Run("new-sandbox", func(t *testing.T) {
			img := filepath.Join(h.NewDir(t), "tty.ckpt")
			frozenGuest(t, p, "r=0 errno=0", guest, img)
			r := checkpt(t, p, "-r", img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("want %q:\n%s", want, r)
			}
		})
		t.Run("same-sandbox", func(t *testing.T) {
			img := filepath.Join(h.NewDir(t), "tty.ckpt")
			r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c", guest+" "+img+"; "+h.Bin+" checkpt -r "+img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, "r=0 errno=0") || !strings.Contains(r.Stdout, want) {
				t.Errorf("want r=0 then %q:\n%s", want, r)
			}
		})
	})
}
