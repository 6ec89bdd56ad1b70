package test

import "testing"

// TestObjTerminalUnsupported shows the documented behaviour of a process holding both ends of a
// pseudo-terminal (terminals are not restored, docs/notes-thaw.md "Terminals"): the thaw
// succeeds and both fds are placeholders (EOF), never reopened by path (which failed the thaw
// with ESTALE in the same sandbox, or named whatever terminal had the index).
func TestObjTerminalUnsupported(t *testing.T) {
	guest := h.BuildC(t, "obj_tty")
	const want = "master=1 replica=1"
	thawNewAndSame(t, objThaw{guest: guest, img: "tty.ckpt", want: want})
}
