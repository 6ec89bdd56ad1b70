package test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// TestObjTerminal freezes a session leader holding a pty master, its replica (its controlling
// terminal) and /dev/tty, with custom termios, window size and packet mode, and thaws it:
//   - new-sandbox: a fresh pair with the same settings, the replica the controlling terminal of
//     the thawed process with its group in the foreground, /dev/tty that terminal, data both ways;
//   - stdio: the controlling replica was also the program's stdin: the pair is rebuilt for its
//     other fds, but the thawer keeps its fds 0–2 and its (here no) controlling terminal;
//   - same-sandbox: the same (the frozen process held both ends, so its pair went with it);
//   - queued (new sandbox) and queued-same-sandbox: four pairs with bytes queued both ways, in
//     canonical mode (a line with unprocessed bytes behind it, an unterminated line, a line ended
//     by end of file) and raw (more than a read buffer): every byte back in its queue, in order,
//     processed or not as at the freeze;
//   - same-sandbox-attach: the master stays with a process outside the image (the frozen one's
//     parent), which changes the window size while the child is frozen; the thaw (by a child of
//     that parent, not a session leader) attaches the replica to that same terminal (same index,
//     the new size, data through the parent's master) and makes it the controlling terminal again.
//
// docs/notes-thaw.md "Terminals".
// queuedWant is what obj_tty -queued prints when every queue came back.
const queuedWant = "queued out=1 line=1 partial=1 unterminated=1 eof=1 raw=1"

func TestObjTerminal(t *testing.T) {
	guest := h.BuildC(t, "obj_tty")
	const want = "tty pair=1 termios=1 winsize=1 packet=1 ctty=1 fg=1 devtty=1 data=1"
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		t.Run("new-sandbox", func(t *testing.T) {
			img := filepath.Join(h.NewDir(t), "tty.ckpt")
			frozenGuest(t, p, "r=0 errno=0", guest, img)
			r := checkpt(t, p, "-r", img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("want %q:\n%s", want, r)
			}
			out := runTool(t, h.Bin, "inspect", img)
			for _, w := range []string{"terminal", "master replica /dev/tty", "101x33", "packet mode", "controlling terminal of the session leader"} {
				if !strings.Contains(out, w) {
					t.Errorf("inspect lacks %q:\n%s", w, out)
				}
			}
		})
		t.Run("stdio", func(t *testing.T) {
			img := filepath.Join(h.NewDir(t), "tty.ckpt")
			frozenGuest(t, p, "r=0 errno=0", guest, "-stdio", img)
			r := checkpt(t, p, "-r", img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, "stdio pair=1 thawer_ctty_kept=1") {
				t.Errorf("want the pair rebuilt and the thawer's (no) controlling terminal kept:\n%s", r)
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
		t.Run("queued", func(t *testing.T) {
			img := filepath.Join(h.NewDir(t), "tty.ckpt")
			frozenGuest(t, p, "r=0 errno=0", guest, "-queued", img)
			out := runTool(t, h.Bin, "inspect", img)
			for _, w := range []string{"queued input 6+5 bytes, output 13+0 bytes", "queued input 3+0 bytes", "queued input 3+4 bytes", "queued input 4095+905 bytes"} {
				if !strings.Contains(out, w) {
					t.Errorf("inspect lacks %q:\n%s", w, out)
				}
			}
			r := checkpt(t, p, "-r", img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, queuedWant) {
				t.Errorf("want %q:\n%s", queuedWant, r)
			}
		})
		t.Run("queued-same-sandbox", func(t *testing.T) {
			img := filepath.Join(h.NewDir(t), "tty.ckpt")
			r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c", guest+" -queued "+img+"; "+h.Bin+" checkpt -r "+img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, "r=0 errno=0") || !strings.Contains(r.Stdout, queuedWant) {
				t.Errorf("want r=0 then %q:\n%s", queuedWant, r)
			}
		})
		t.Run("same-sandbox-attach", func(t *testing.T) {
			img := filepath.Join(h.NewDir(t), "tty.ckpt")
			r := h.Do(t, harness.Opts{Platform: p, Persist: true}, guest, "-attach", img, h.Bin)
			r.WantExit(t, 0)
			const want = "attach pair=1 winsize=1 ctty=1 fg=1 devtty=1 data=1 termios=1"
			if !strings.Contains(r.Stdout, "r=0 errno=0") || !strings.Contains(r.Stdout, want) {
				t.Errorf("want r=0 then %q:\n%s", want, r)
			}
		})
	})
}
