package test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// TestObjProcAttrs: umask, oom_score_adj, the child-subreaper flag, the parent death signal, the
// membarrier registration and the supplementary groups (the thawer is root in the sandbox, so it
// may set them) come back after a thaw in a new sandbox and in the same one. Each differs from the
// thawer's own (umask 022, oom_score_adj 0, none of the rest).
func TestObjProcAttrs(t *testing.T) {
	guest := h.BuildC(t, "obj_attrs")
	const want = "umask=1 oom=1 subreaper=1 pdeath=1 membarrier=1 groups=1"
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		t.Run("new-sandbox", func(t *testing.T) {
			img := filepath.Join(h.NewDir(t), "attrs.ckpt")
			frozenGuest(t, p, "r=0 errno=0", guest, img)
			r := checkpt(t, p, "-r", img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("want %q:\n%s", want, r)
			}
		})
		t.Run("same-sandbox", func(t *testing.T) {
			img := filepath.Join(h.NewDir(t), "attrs.ckpt")
			r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c", guest+" "+img+"; "+h.Bin+" checkpt -r "+img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, "r=0 errno=0") || !strings.Contains(r.Stdout, want) {
				t.Errorf("want r=0 then %q:\n%s", want, r)
			}
		})
	})
}
