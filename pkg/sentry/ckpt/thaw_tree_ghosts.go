package ckpt

import (
	"fmt"
	"sort"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// Ghost leaders. A process group or a session outlives its leader, in Linux as in gVisor: a daemon
// that forked, called setsid and forked again leaves its grandchild in a session (and group) whose
// leader has exited; a pipeline whose first process ended leaves the others in a group led by
// nobody. gVisor makes a group or a session only with the id of the process that creates it
// (setpgid(0, 0), setsid) and a process enters a session only by being cloned inside it. So an
// exact restore (a fresh container) recreates such a group or session with a *ghost*: an agent
// created at the missing leader's id in the restore's ascending id walk, which calls setsid (or
// setpgid(0, 0)). The group's members join it like any other group. A session is entered only by
// birth, and gVisor puts a new process in its *parent's* group and session even with CLONE_PARENT
// (Linux: the caller's), so the session's members whose parent is outside the session are cloned
// by the ghost as its children; such a member's recorded parent is the init (a process whose
// parent exits is reparented to the init), and so is the ghost's. Once every process is in its
// group, each ghost exits: its children are reparented to the init, as they were at the freeze,
// and the ghost's parent reaps it; the SIGCHLD this raises is among the signals a thaw discards
// (discardThawerSignals). The restored group or session then has no leader process, as recorded.
//
// Refused (EINVAL, nothing left running): a ghost session with a member whose parent is outside
// the session and is not the init (a subreaper's child), the root itself in one, and ids out of
// order (a member below the leader's id: the id space wrapped).

// ghostComm is a ghost's name while it exists (during the restore only).
const ghostComm = "ckpt-ghost"

// ghostLeader is one group or session whose leader is not in the checkpoint.
type ghostLeader struct {
	id      int32 // The group's or session's id: the pid the ghost is created at.
	session bool  // It makes a session (setsid, which makes the group of the same id too).
	parent  int32 // Recorded pid of the ghost's parent and cloner (0: the restore's top).
	node    *restoreNode
}

// planGhosts finds the groups and sessions of the manifest whose leader is not in it and plans a
// ghost for each (exact restores only).
func (r *treeRestore) planGhosts() error {
	if !r.exact {
		return nil
	}
	procs := make([]*treefmt.Process, 0, len(r.nodes))
	for _, n := range r.nodes {
		procs = append(procs, n.rec)
	}
	sort.Slice(procs, func(i, j int) bool { return procs[i].PID < procs[j].PID })
	topPID := int32(0)
	if r.top != nil && r.top.rec != nil {
		topPID = r.top.rec.PID
	}
	// parentOf is the recorded pid a process is created under (the top for one whose parent is
	// not in the checkpoint).
	parentOf := func(p *treefmt.Process) int32 {
		if r.nodes[p.PPID] != nil {
			return p.PPID
		}
		return topPID
	}
	r.ghosts = make(map[int32]*ghostLeader)
	for _, p := range procs {
		if r.nodes[p.SID] != nil || r.ghosts[p.SID] != nil {
			continue
		}
		g := &ghostLeader{id: p.SID, session: true, parent: topPID}
		for _, q := range procs {
			if q.SID != p.SID {
				continue
			}
			if q.PID == topPID {
				return invalidf("the root process %d is in session %d, whose leader is not in the checkpoint: not supported", q.PID, g.id)
			}
			if q.PID < g.id {
				return invalidf("pid %d is below its session %d, whose leader is not in the checkpoint (the id space wrapped): not supported", q.PID, g.id)
			}
			par := parentOf(q)
			if pr := r.nodes[par]; pr != nil && pr.rec.SID == q.SID {
				continue // Cloned inside the session by its parent.
			}
			if par != topPID {
				return invalidf("pid %d of session %d, whose leader is not in the checkpoint, is a child of pid %d outside the session, not of the init: not supported", q.PID, g.id, par)
			}
		}
		r.ghosts[g.id] = g
	}
	for _, p := range procs {
		if r.nodes[p.PGID] != nil || r.ghosts[p.PGID] != nil {
			continue
		}
		// The ghost of a group is cloned in the group's session by the session's leader (or
		// its ghost), which exists before any group of the session is made.
		if p.SID > p.PGID {
			return invalidf("process group %d is below its session %d: not supported", p.PGID, p.SID)
		}
		for _, q := range procs {
			if q.PGID == p.PGID && q.SID != p.SID {
				return invalidf("process group %d spans sessions %d and %d", p.PGID, p.SID, q.SID)
			}
			if q.PGID == p.PGID && q.PID < p.PGID {
				return invalidf("pid %d is below its process group %d, whose leader is not in the checkpoint (the id space wrapped): not supported", q.PID, p.PGID)
			}
		}
		r.ghosts[p.PGID] = &ghostLeader{id: p.PGID, parent: p.SID}
	}
	return nil
}

// ghostNode returns the node of a created process or ghost by recorded pid, the top for 0.
func (r *treeRestore) ghostNode(pid int32) *restoreNode {
	if g := r.ghosts[pid]; g != nil && g.node != nil {
		return g.node
	}
	if n := r.nodes[pid]; n != nil && n.pid != 0 {
		return n
	}
	if pid == 0 || (r.top != nil && r.top.rec != nil && r.top.rec.PID == pid) {
		return r.top
	}
	return nil
}

// createGhost creates ghost g at its id and makes its session or group.
func (r *treeRestore) createGhost(g *ghostLeader) error {
	cloner := r.ghostNode(g.parent)
	if cloner == nil || cloner.task == nil {
		return fmt.Errorf("the leader of %s %d: its parent %d does not exist: %w", g.kind(), g.id, g.parent, errInvalidImage)
	}
	tid, err := r.create(cloner, cloner, g.id, 0)
	if err != nil {
		return fmt.Errorf("the leader of %s %d (not in the checkpoint): %w", g.kind(), g.id, err)
	}
	n := &restoreNode{rec: &treefmt.Process{PID: g.id, PPID: g.parent, Comm: ghostComm}, pid: tid, cmds: make(chan agentCmd, 1)}
	n.task = r.ns.TaskWithID(kernel.ThreadID(tid))
	r.register(tid, n)
	g.node = n
	op := agentCmd{op: opNewPgrp}
	if g.session {
		op = agentCmd{op: opSetsid}
	}
	if err := r.must(n, op); err != nil {
		return fmt.Errorf("the leader of %s %d (not in the checkpoint): %w", g.kind(), g.id, err)
	}
	return nil
}

// ghostCloner returns the ghost that must clone n so that n is born in its session, or nil: n's
// session has a ghost leader and n's parent (the init, planGhosts checked) is outside that session.
// n is the ghost's child until the ghost exits (endGhosts) and n is reparented to the init.
func (r *treeRestore) ghostCloner(n *restoreNode, parent *restoreNode) *restoreNode {
	g := r.ghosts[n.rec.SID]
	if g == nil || !g.session || g.node == nil {
		return nil
	}
	if parent != nil && parent.rec != nil && parent.rec.SID == n.rec.SID {
		return nil
	}
	return g.node
}

// endGhosts makes every ghost exit (its children go to the init) and its parent reap it: groups
// first (a group's ghost may be a child of a session's ghost).
func (r *treeRestore) endGhosts() error {
	list := make([]*ghostLeader, 0, len(r.ghosts))
	for _, g := range r.ghosts {
		if g.node != nil {
			list = append(list, g)
		}
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].session != list[j].session {
			return !list[i].session
		}
		return list[i].id > list[j].id
	})
	for _, g := range list {
		parent := r.ghostNode(g.parent)
		if err := r.must(g.node, agentCmd{op: opExit, ws: linux.WaitStatusExit(0)}); err != nil {
			return fmt.Errorf("the leader of %s %d: exit: %w", g.kind(), g.id, err)
		}
		if err := r.must(parent, agentCmd{op: opReap, arg: int64(g.node.pid)}); err != nil {
			return fmt.Errorf("the leader of %s %d: reaping it: %w", g.kind(), g.id, err)
		}
		g.node = nil
	}
	return nil
}

// kind names what g leads.
func (g *ghostLeader) kind() string {
	if g.session {
		return "session"
	}
	return "process group"
}
