package test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// TestObjUnsupported: kernel objects no image can hold (docs/notes-thaw.md, "Refused at freeze"):
// a process with an AIO context or an io_uring instance (gVisor's --iouring) is refused with
// EOPNOTSUPP, writes no image byte and keeps running; userfaultfd does not exist in gVisor (ENOSYS),
// so such a process freezes normally.
func TestObjUnsupported(t *testing.T) {
	guest := h.BuildC(t, "obj_unsupported")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		for _, c := range []struct {
			mode, want string
			flags      []string
		}{
			{"aio", "setup=0 r=-1 errno=EOPNOTSUPP size=0\n", nil},
			{"iouring", "setup=0 r=-1 errno=EOPNOTSUPP size=0\n", []string{"--iouring"}},
			{"userfaultfd", "setup=-38 r=0 errno=OK size=", nil},
		} {
			t.Run(c.mode, func(t *testing.T) {
				img := filepath.Join(h.NewDir(t), c.mode+".ckpt")
				r := h.Do(t, harness.Opts{Platform: p, Persist: true, Flags: c.flags}, guest, img, c.mode)
				r.WantExit(t, 0)
				if !strings.Contains(r.Stdout, c.want) {
					t.Errorf("want %q:\n%s", c.want, r)
				}
			})
		}
	})
}
