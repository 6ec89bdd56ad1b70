package ckpt

import (
	"fmt"
	"slices"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/sentry/arch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
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
//
// Since gVisor keeps the controlling terminal per thread group, copies it at fork and lets only a
// session leader set it, these terminals are rebuilt before the processes are created
// (shareTerminalsEarly) and a session leader that had one as its controlling terminal makes it so
// right after its setsid (takeControllingTTY): the processes of its session created after it
// inherit it, as the originals had.
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
// make a terminal its controlling one; the other processes of the session inherit it from it).
func terminalControlCommit(o *imgfmt.Object, use *sharedUse) func(t *kernel.Task) error {
	if terminalControlDesc(o, use) < 0 {
		return nil
	}
	s := o.Body.(*imgfmt.TerminalObject).State
	return func(t *kernel.Task) error {
		if f := terminalControlFile(o, use); f != nil {
			restoreControllingTTY(t, f, s)
		}
		return nil
	}
}

// terminalControlDesc returns the description of the shared object through which the session
// leader whose image object is o had the terminal as its controlling one, or -1.
func terminalControlDesc(o *imgfmt.Object, use *sharedUse) int {
	b, ok := o.Body.(*imgfmt.TerminalObject)
	if !ok || b.State == nil {
		return -1
	}
	s := b.State
	const want = imgfmt.TerminalControlling | imgfmt.TerminalSessionLeader
	if s.Flags&want != want {
		return -1
	}
	via := slices.IndexFunc(s.Ends, func(e imgfmt.TerminalEnd) bool {
		return (e == imgfmt.TerminalMaster) == (s.Flags&imgfmt.TerminalControllingMaster != 0)
	})
	if via < 0 || via >= len(use.descs) {
		return -1
	}
	return use.descs[via]
}

// terminalControlFile returns the file of terminalControlDesc, or nil.
func terminalControlFile(o *imgfmt.Object, use *sharedUse) *vfs.FileDescription {
	d := terminalControlDesc(o, use)
	if d < 0 || use.obj == nil || d >= len(use.obj.th.files) {
		return nil
	}
	return use.obj.th.files[d]
}

// earlyTerminal is a terminal rebuilt before the processes: each member's use, by pid.
type earlyTerminal struct {
	uses []*sharedUse
	pids []int32
}

// shareTerminalsEarly rebuilds each terminal that several processes' images have, before the
// processes are created; shareObjects then hands them over with the other shared objects.
func (r *treeRestore) shareTerminalsEarly(t *kernel.Task) error {
	groups, order, err := r.groupObjects(t, r.thawingPIDs(), func(k imgfmt.ObjectKind) bool { return k == imgfmt.ObjTerminal }) // thaw_tree_objects.go
	if err != nil {
		return err
	}
	for _, key := range order {
		members := groups[key]
		if len(members) < 2 {
			continue
		}
		so, uses, err := r.buildShared(t, key, members)
		if err != nil {
			return fmt.Errorf("terminal %#x shared by pids %s: %w", key, memberPids(members), err)
		}
		r.shared = append(r.shared, so)
		if r.earlyTerminals == nil {
			r.earlyTerminals = make(map[uint64]*earlyTerminal)
		}
		e := &earlyTerminal{uses: uses}
		for _, m := range members {
			e.pids = append(e.pids, m.pid)
		}
		r.earlyTerminals[key] = e
	}
	return nil
}

// takeControllingTTY makes the terminal that the session leader n (recorded pid) had as its
// controlling terminal, if it was rebuilt early, n's controlling terminal now, through n's agent.
// A failure is logged: the leader's own commit tries again (restoreControllingTTY).
func (r *treeRestore) takeControllingTTY(t *kernel.Task, pid int32, n *restoreNode) {
	if len(r.earlyTerminals) == 0 || n.thawReq.file == nil || n.rec.Zombie != nil {
		return
	}
	p, err := r.image(t, pid)
	if err != nil {
		return
	}
	for i := range p.Objects {
		o := &p.Objects[i]
		e := r.earlyTerminals[o.Key]
		if e == nil || o.Kind() != imgfmt.ObjTerminal {
			continue
		}
		j := slices.Index(e.pids, pid)
		if j < 0 {
			continue
		}
		f := terminalControlFile(o, e.uses[j])
		if f == nil {
			continue
		}
		if err := r.must(n, agentCmd{op: opCtty, file: f}); err != nil {
			t.Infof("ckpt: tree restore: pid %d: its controlling terminal before its children: %v", pid, err)
		}
	}
}

// setControllingTTY makes f's terminal the controlling terminal of t's process (TIOCSCTTY).
func setControllingTTY(t *kernel.Task, f *vfs.FileDescription) error {
	var args arch.SyscallArguments
	args[1].Value = uintptr(linux.TIOCSCTTY)
	_, err := f.Ioctl(t, t.MemoryManager(), sysIoctl, args)
	return err
}
