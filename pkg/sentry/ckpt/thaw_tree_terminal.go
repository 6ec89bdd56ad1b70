package ckpt

import (
	"slices"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// Terminals shared by processes of a restored tree (docs/tree-format.md). A devpts pair that
// several processes of the container had (a shell and its jobs on the replica, the program that
// holds the master) is one object in each image, under the same key (the terminal's identity).
// It is rebuilt once, like the other shared objects: one new pair (or, in the same sandbox without
// a master in the tree, the old terminal's replicas attached again) with the termios, window size
// and queued bytes of the first image that has it, set once by the coordinator at commit. Which
// terminal is a process's controlling one, and which process group is in the foreground, belong to
// the processes: mergeTerminalBody takes them out of the shared body, and terminalControlCommit
// gives them back in each process's own commit: the session leader makes the terminal its
// controlling one again (TIOCSCTTY), then sets the recorded foreground process group if that group
// exists in its session after the restore (TIOCSPGRP semantics; the restore keeps pgids, so it
// does unless the group left nobody in the checkpoint).

// mergeTerminalBody returns the terminal body of the merged descriptions: each end from the image
// that has it, the terminal's state from the first image, without the per-process controlling
// terminal flags.
func mergeTerminalBody(members []objectMember, merged []descRef) (imgfmt.ObjectBody, error) {
	b := members[0].obj.Body.(*imgfmt.TerminalObject)
	if b.State == nil {
		return b, nil // Images without the state: a placeholder each (one description).
	}
	st := *b.State
	st.Ends = nil
	st.Flags &= imgfmt.TerminalPacket
	st.FgPGID = 0
	for _, ref := range merged {
		m := members[ref.member]
		mb, ok := m.obj.Body.(*imgfmt.TerminalObject)
		if !ok || mb.State == nil || int(ref.desc) >= len(mb.State.Ends) || mb.Index != b.Index {
			return nil, invalidf("the terminal's images disagree (end %d of pid %d)", ref.desc, m.pid)
		}
		st.Ends = append(st.Ends, mb.State.Ends[ref.desc])
	}
	nb := &imgfmt.TerminalObject{Replica: st.Ends[0] != imgfmt.TerminalMaster, Index: b.Index, State: &st}
	return nb, nil
}

// terminalControlCommit returns the commit step of a process whose image object o is a terminal
// rebuilt once for the tree (use: the process's descriptions of it), or nil when the terminal was
// not its controlling one, or the process did not lead its session (only a session leader can
// make a terminal its controlling one; the other processes of the session reach it through it).
func terminalControlCommit(o *imgfmt.Object, use *sharedUse) func(t *kernel.Task) error {
	b, ok := o.Body.(*imgfmt.TerminalObject)
	if !ok || b.State == nil {
		return nil
	}
	s := b.State
	const want = imgfmt.TerminalControlling | imgfmt.TerminalSessionLeader
	if s.Flags&want != want {
		return nil
	}
	via := slices.IndexFunc(s.Ends, func(e imgfmt.TerminalEnd) bool {
		return (e == imgfmt.TerminalMaster) == (s.Flags&imgfmt.TerminalControllingMaster != 0)
	})
	if via < 0 || via >= len(use.descs) {
		return nil
	}
	return func(t *kernel.Task) error {
		f := use.obj.th.files[use.descs[via]]
		if f == nil {
			return nil
		}
		restoreControllingTTY(t, f, s)
		return nil
	}
}
