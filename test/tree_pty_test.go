package test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
)

// TestTreePtyForegroundOCI: a container whose init holds a pty's master and runs busybox `sh -i`
// as a session leader on the replica, with `sleep 1000` as the foreground job (its own process
// group in the terminal's foreground; test/guests/tree_pty.c), is checkpointed with --format=elf,
// deleted and restored. The pty comes back as one pair shared by the three processes (one terminal
// object per image, the same key), the shell's controlling terminal, with the sleep's group in the
// foreground again: ^C written to the master kills the sleep, the shell takes the foreground back
// and answers a command, and `stty size` in the shell shows the window size (33x99) set on the
// master before the checkpoint. A background job of the shell (not a session leader) still has the
// terminal as its controlling one: it opens /dev/tty.
func TestTreePtyForegroundOCI(t *testing.T) {
	guest := h.BuildC(t, "tree_pty")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := startGuestTree(t, p, guest, "pty.log")
		dir, m := checkpointTreeAndDelete(t, a)
		if len(m.Processes) != 4 {
			t.Fatalf("the checkpoint does not hold the init, the shell and its two jobs: %+v", m.Processes)
		}
		var shell, probe int32
		for _, pr := range m.Processes {
			if pr.PPID == 1 {
				shell = pr.PID
			}
		}
		for _, pr := range m.Processes {
			if pr.PPID == shell && shell != 0 && pr.Comm != "sleep" {
				probe = pr.PID
			}
		}
		if probe == 0 {
			t.Fatalf("no background job of the shell: %+v", m.Processes)
		}
		keys := map[uint64]int{}
		for _, pr := range m.Processes {
			img := decodeImage(t, filepath.Join(dir, pr.Image))
			for _, o := range img.Objects {
				if _, ok := o.Body.(*imgfmt.TerminalObject); ok {
					keys[o.Key]++
				}
			}
		}
		if len(keys) != 1 {
			t.Errorf("the processes' images name %d terminals, want 1: %v", len(keys), keys)
		}
		r := restoreLogged(t, p, a, dir, m, "pty.log")
		r.kill(t, logHas("probe opens"), "-USR1", fmt.Sprint(probe))
		r.kill(t, logHas("parent done"), "-USR1", "1")
		r.checkLines(t, 7)
	})
}
