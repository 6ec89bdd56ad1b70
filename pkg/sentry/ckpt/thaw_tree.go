package ckpt

import (
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/ckptabi"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/fspath"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// CKPT_THAW_TREE: sys_checkpoint(CKPT_THAW_TREE, dirfd, -1, flags) recreates the tree checkpoint in
// the directory dirfd (docs/tree-format.md) and thaws every process of it. The caller is the
// coordinator, on its own task goroutine:
//
//  1. read and validate the manifest, open every image;
//  2. create the processes in ascending pid order, each by a clone of its restored parent (an agent,
//     thaw_tree_agent.go), with its recorded pid: gVisor hands out the first free id after the last
//     one it gave (there is no set_tid), so the coordinator moves the allocator on with throw-away
//     threads until the next free id is the one wanted, and fails if it has passed it;
//  3. sessions and process groups: a session or group leader makes its session or group right
//     after it is created (before it forks), the others join their group once all exist; a group
//     or session whose leader is not in the checkpoint gets a ghost leader for the time of the
//     restore (thaw_tree_ghosts.go);
//  4. zombies exit with their recorded status (their parents reap them after the thaw);
//  4b. objects several processes had (a pipe between them, a socket pair, a listening socket of
//     workers, an fd inherited by fork, shared memory) are rebuilt once, with their data once,
//     and handed to each process's thaw (thaw_tree_objects.go); fs contexts shared with the
//     parent or a sibling were recreated in step 2 (CLONE_FS, CLONE_PARENT);
//  5. every live process prepares the thaw of its own image (validation, reopening files); only
//     when all have succeeded does each exec into its image (the lazy thaw of CKPT_THAW). fds that
//     were the container's stdio (the descriptions the runtime gave the container as its fds
//     0–2, wherever they sit now: freeze_tree_stdio.go; in older manifests the root's fds 0–2)
//     take the restorer's fds 0–2.
//
// With CKPT_TREE_SELF the caller itself becomes the tree's root process (its pid must be the
// root's: pid 1 for a whole container restored by the container's init) and thaws last; the call
// does not return on success. Without it the tree's top processes become children of the caller,
// with their recorded pids where these can still be had and other pids otherwise, and the call
// returns the pid of the tree's root.
//
// Any failure kills every process created so far and fails the call (the log says why).

// CKPT_TREE_SELF makes CKPT_THAW_TREE turn the caller into the tree's root process.
const CKPT_TREE_SELF int32 = ckptabi.CKPT_TREE_SELF

// treeRestore is one restore in progress.
type treeRestore struct {
	id     int32
	coord  *kernel.Task
	ns     *kernel.PIDNamespace
	m      *treefmt.Manifest
	tramp  hostarch.Addr
	self   bool // CKPT_TREE_SELF.
	report bool // CKPT_TREE_REPORT.
	exact  bool // Pids must be the recorded ones.
	// last is the id the allocator handed out last, as far as the coordinator knows (0: unknown).
	last int32
	// thrown counts throw-away threads, passed the ids that were skipped unexpectedly (taken by
	// someone else meanwhile); both for the log.
	thrown int
	passed int

	nodes map[int32]*restoreNode // By recorded pid.
	// stdio maps the description ids of the root's fds 0–2 (the container's stdio) to their fd.
	stdio map[string]int32
	top   *restoreNode // The parent of the tree's top processes.
	// images caches the decoded images by recorded pid (thaw_tree_shared.go).
	images map[int32]*imgfmt.Process
	// shared holds the objects rebuilt once for several processes (thaw_tree_objects.go).
	shared []*sharedObject
	// earlyTerminals holds the uses of the terminals rebuilt before the processes are created,
	// by key (thaw_tree_terminal.go).
	earlyTerminals map[uint64]*earlyTerminal
	// epolls holds the epoll instances the thaws rebuilt, by key (treeShare.epolls).
	epolls map[uint64]*vfs.FileDescription
	// rebuilt holds the mounts restoreContainerState made afresh (treeShare.rebuilt).
	rebuilt rebuiltMounts
	// ghosts holds the leaders made for groups and sessions whose own leader is not in the
	// checkpoint, by id (thaw_tree_ghosts.go).
	ghosts map[int32]*ghostLeader

	mu sync.Mutex
	// byTid maps a created task's id to its node (nil: a waste that must exit). Protected by mu.
	// +checklocks:mu
	byTid map[int32]*restoreNode
	// registered says which ids have been entered in byTid. Protected by mu.
	// +checklocks:mu
	registered map[int32]bool
	// failed is set when the restore is abandoned. Protected by mu.
	// +checklocks:mu
	failed bool
	// cloning is set while an agent clones a process of the tree, until the coordinator has
	// registered it (awaitNode). Protected by mu.
	// +checklocks:mu
	cloning bool
	// coordTid is the coordinator's thread id (the parent of the tree's top processes), set
	// before the first clone.
	coordTid int32
}

// restoreNode is one process of the restored tree (or the coordinator as the top's parent).
type restoreNode struct {
	rec  *treefmt.Process // nil for a coordinator that is not part of the tree.
	pid  int32            // Actual pid once created.
	task *kernel.Task
	self bool // Runs on the coordinator's goroutine.
	cmds chan agentCmd

	thawReq   thawRequest
	plan      *thawPlan
	thawStart time.Time

	// threads holds a process's thread agents by recorded tid; threadOf is a thread agent's
	// process (thaw_tree_tids.go).
	threads  map[int32]*restoreNode
	threadOf *restoreNode
	// fdShare is the process's fd table group, fdOwner whether it installs the table's fds
	// (thaw_tree_files.go).
	fdShare *filesShare
	fdOwner bool
	// serving is set once the agent runs serveAgent's command loop: it has left user mode for
	// good (a new clone starts in user mode, at the trampoline, which an in-place thaw unmaps).
	serving atomic.Bool
}

// restores holds the restores in progress by id.
var restores = restoreRegistry{m: make(map[int32]*treeRestore)}

// restoreRegistry is the type of restores.
type restoreRegistry struct {
	mu sync.Mutex
	// next is the id of the last restore registered.
	// +checklocks:mu
	next int32
	// +checklocks:mu
	m map[int32]*treeRestore
}

func lookupRestore(id int32) *treeRestore {
	restores.mu.Lock()
	defer restores.mu.Unlock()
	return restores.m[id]
}

// awaitNode waits until the coordinator has registered t (its parent registers it right after
// the clone) and returns its node; nil for a waste. It fails with EINTR if the restore failed or t
// was killed meanwhile, and with EINVAL at once if t is not a process this restore is creating:
// the agent flag is not part of the ABI, but any guest can pass it with a restore's id, and must
// not wait there (docs/security.md).
func (r *treeRestore) awaitNode(t *kernel.Task) (*restoreNode, error) {
	tid := int32(r.ns.IDOfTask(t))
	// Who cloned t: its parent, or for a thread (a thread agent, thaw_tree_tids.go) its process's
	// leader, which made it with CLONE_THREAD.
	parent := int32(-1)
	if leader := t.ThreadGroup().Leader(); leader != nil && leader != t {
		parent = int32(r.ns.IDOfTask(leader))
	} else if p := t.Parent(); p != nil {
		parent = int32(r.ns.IDOfTask(p))
	}
	for {
		r.mu.Lock()
		n, reg, failed := r.byTid[tid], r.registered[tid], r.failed
		maybe := r.cloning && parent > 0 && (parent == r.coordTid || r.registered[parent])
		r.mu.Unlock()
		if failed {
			return nil, linuxerr.EINTR
		}
		if reg {
			return n, nil
		}
		if !maybe {
			// Not registered, and no clone of the restore is under way whose child t could be.
			return nil, linuxerr.EINVAL
		}
		if !sleepUnlessKilled(t, time.Millisecond) {
			return nil, linuxerr.EINTR
		}
	}
}

// cloneStarts says that a clone of the restore is under way: its child may enter serveAgent
// before the coordinator registers it.
func (r *treeRestore) cloneStarts() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cloning = true
}

// cloneFailed says that the clone under way made no child.
func (r *treeRestore) cloneFailed() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cloning = false
}

func (r *treeRestore) register(tid int32, n *restoreNode) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byTid[tid] = n
	r.registered[tid] = true
	r.cloning = false
}

// do runs cmd on node n (inline if n is the coordinator) and returns the reply.
func (r *treeRestore) do(n *restoreNode, cmd agentCmd) (agentReply, error) {
	cmd.reply = make(chan agentReply, 1)
	if n.self {
		n.exec(r.coord, r, cmd)
		return <-cmd.reply, nil
	}
	n.cmds <- cmd
	t := r.coord
	for {
		t.UninterruptibleSleepStart()
		select {
		case rep := <-cmd.reply:
			t.UninterruptibleSleepFinish()
			return rep, nil
		case <-time.After(10 * treePoll):
		}
		t.UninterruptibleSleepFinish()
		if t.Killed() {
			return agentReply{}, fmt.Errorf("killed while restoring: %w", linuxerr.EINTR)
		}
		if n.task != nil && n.task.ExitState() != kernel.TaskExitNone {
			// An agent that exits on purpose (opExit: a zombie) replies first; the reply may
			// have come after the select above gave up.
			select {
			case rep := <-cmd.reply:
				return rep, nil
			default:
			}
			return agentReply{}, fmt.Errorf("the agent of pid %d died: %w", n.pid, linuxerr.ESRCH)
		}
	}
}

// treeThawRequest is a validated CKPT_THAW_TREE call.
type treeThawRequest struct {
	dir    *vfs.FileDescription // A reference is held.
	self   bool
	report bool // CKPT_TREE_REPORT.
}

// newTreeThawRequest validates CKPT_THAW_TREE's arguments: dirfd a directory, pid -1, flags 0 or
// CKPT_TREE_SELF and CKPT_TREE_REPORT.
func newTreeThawRequest(t *kernel.Task, fd, pid, flags int32) (treeThawRequest, error) {
	if pid != -1 || flags&^(CKPT_TREE_SELF|ckptabi.CKPT_TREE_REPORT) != 0 {
		return treeThawRequest{}, linuxerr.EINVAL
	}
	f := t.GetFile(fd)
	if f == nil {
		return treeThawRequest{}, linuxerr.EBADF
	}
	st, err := f.Stat(t, vfs.StatOptions{Mask: linux.STATX_TYPE})
	if err != nil || st.Mode&linux.S_IFMT != linux.S_IFDIR {
		f.DecRef(t)
		return treeThawRequest{}, linuxerr.ENOTDIR
	}
	return treeThawRequest{dir: f, self: flags&CKPT_TREE_SELF != 0, report: flags&ckptabi.CKPT_TREE_REPORT != 0}, nil
}

// thawTree implements CKPT_THAW_TREE (see the comment at the top).
//
// Preconditions: running on t's task goroutine.
func thawTree(t *kernel.Task, req treeThawRequest) (uintptr, *kernel.SyscallControl, error) {
	defer req.dir.DecRef(t)
	r, err := loadRestore(t, req)
	if err != nil {
		t.Infof("ckpt: tree restore refused: %v", err)
		if req.report {
			reportTreeFailure(t, err)
		}
		return 0, nil, sysErrno(errnoThaw, err)
	}
	if r.self && threadCount(t) > 1 {
		return reexecCoordinator(t, r)
	}
	return coordinate(t, r)
}

// coordinate runs a loaded restore on t's goroutine and cleans up after a failure.
func coordinate(t *kernel.Task, r *treeRestore) (uintptr, *kernel.SyscallControl, error) {
	start := time.Now()
	// Set here, not when loaded: a re-exec'd coordinator may have taken its leader's id.
	r.coordTid = int32(r.ns.IDOfTask(t))
	ret, ctl, err := r.run(t)
	r.unregister()
	if err != nil {
		t.Warningf("ckpt: tree restore failed, killing what it created: %v", err)
		r.abandon(t)
		if r.report {
			reportTreeFailure(t, err)
		}
		return 0, nil, sysErrno(errnoThaw, err)
	}
	t.Infof("ckpt: restored tree of %d processes in %v with %d throw-away threads (thaws are lazy)", len(r.m.Processes), time.Since(start), r.thrown)
	return ret, ctl, nil
}

// loadRestore reads the manifest, opens every image and checks what can be checked before
// anything is created.
func loadRestore(t *kernel.Task, req treeThawRequest) (*treeRestore, error) {
	mf, err := openInDir(t, req.dir, treefmt.ManifestName)
	if err != nil {
		return nil, fmt.Errorf("opening the manifest: %w", err)
	}
	m, err := treefmt.DecodeManifest(io.NewSectionReader(fileReaderAt{t: t, f: mf}, 0, 64<<20+1))
	mf.DecRef(t)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errInvalidImage, err)
	}
	m.SortProcesses()
	r := &treeRestore{
		coord: t, ns: t.PIDNamespace(), m: m, self: req.self, report: req.report, exact: req.self,
		nodes: make(map[int32]*restoreNode), byTid: make(map[int32]*restoreNode), registered: make(map[int32]bool),
	}
	ok := false
	defer func() {
		if !ok {
			r.releaseAll(t)
		}
	}()
	for i := range m.Processes {
		p := &m.Processes[i]
		n := &restoreNode{rec: p, cmds: make(chan agentCmd, 1)}
		r.nodes[p.PID] = n
		if p.Zombie != nil {
			continue
		}
		f, err := openInDir(t, req.dir, p.Image)
		if err != nil {
			return nil, fmt.Errorf("pid %d: opening image %s: %w", p.PID, p.Image, err)
		}
		n.thawReq = thawRequest{file: f, retval: 0, policy: CurrentPolicy()}
	}
	// The root: the process the tree was taken from, or the lowest pid without a parent.
	var root *treefmt.Process
	for i := range m.Processes {
		p := &m.Processes[i]
		if (m.Root != 0 && p.PID == m.Root) || (m.Root == 0 && root == nil && (p.PPID == 0 || r.nodes[p.PPID] == nil)) {
			root = p
		}
	}
	if root == nil {
		return nil, invalidf("the manifest has no root process")
	}
	if req.self {
		if root.Zombie != nil {
			return nil, invalidf("the root process %d is a zombie", root.PID)
		}
		if got := int32(r.ns.IDOfThreadGroup(t.ThreadGroup())); got != root.PID {
			return nil, invalidf("the restorer has pid %d, the tree's root %d", got, root.PID)
		}
		r.top = r.nodes[root.PID]
		r.top.self, r.top.task, r.top.pid = true, t, root.PID
	} else {
		r.top = &restoreNode{self: true, task: t, pid: int32(r.ns.IDOfThreadGroup(t.ThreadGroup()))}
	}
	for i := range m.Processes {
		p := &m.Processes[i]
		if parent := r.nodes[p.PPID]; parent != nil && p.PPID > p.PID && !(r.self && r.top.rec == p) {
			return nil, invalidf("pid %d has the higher pid %d as parent (reparented to a subreaper): not supported", p.PID, p.PPID)
		}
	}
	if err := r.planGhosts(); err != nil { // thaw_tree_ghosts.go
		return nil, err
	}
	stdio := m.Stdio(root)
	r.stdio = stdio
	for _, n := range r.nodes {
		if n.rec.Zombie != nil {
			continue
		}
		n.thawReq.inherit = make(map[int32]int32)
		for _, fd := range n.rec.FDs {
			if src, ok := stdio[fd.File]; ok {
				n.thawReq.inherit[fd.FD] = src
			}
		}
	}
	if threadCount(t) == 1 || !req.self {
		if r.tramp, err = mapTrampoline(t); err != nil {
			return nil, err
		}
	}
	// Hostname and tmpfs contents of a whole container, before any process exists (thaw_tree_fs.go).
	if r.rebuilt, err = restoreContainerState(t, req.dir, m, req.self); err != nil {
		return nil, err
	}
	restores.mu.Lock()
	restores.next++
	r.id = restores.next
	restores.m[r.id] = r
	restores.mu.Unlock()
	ok = true
	return r, nil
}

// openInDir opens name (a plain file name) in the directory dir, read-only, with t's credentials.
func openInDir(t *kernel.Task, dir *vfs.FileDescription, name string) (*vfs.FileDescription, error) {
	root := t.FSContext().RootDirectory()
	defer root.DecRef(t)
	return t.Kernel().VFS().OpenAt(t, t.Credentials(), &vfs.PathOperation{
		Root: root, Start: dir.VirtualDentry(), Path: fspath.Parse(name),
	}, &vfs.OpenOptions{Flags: linux.O_RDONLY | linux.O_NOFOLLOW | linux.O_LARGEFILE})
}

// run creates the tree and thaws it.
func (r *treeRestore) run(t *kernel.Task) (uintptr, *kernel.SyscallControl, error) {
	pids := make([]int32, 0, len(r.nodes))
	for pid := range r.nodes {
		pids = append(pids, pid)
	}
	sort.Slice(pids, func(i, j int) bool { return pids[i] < pids[j] })
	mapped := func(pid int32) int32 {
		if n := r.nodes[pid]; n != nil && n.pid != 0 {
			return n.pid
		}
		return pid
	}
	// Terminals several processes share, before the processes: a session leader makes its
	// controlling one at once, so that the processes created after it inherit it.
	if err := r.shareTerminalsEarly(t); err != nil { // thaw_tree_terminal.go
		return 0, nil, err
	}
	// 2, 3: create in pid order; leaders make their session or group at once.
	for _, id := range r.idsToCreate(pids) {
		if id.thread {
			if err := r.createThreadAgent(r.nodes[id.pid], id.id); err != nil {
				return 0, nil, err
			}
			continue
		}
		if id.ghost != nil {
			if err := r.createGhost(id.ghost); err != nil {
				return 0, nil, err
			}
			continue
		}
		pid := id.pid
		n := r.nodes[pid]
		if n == r.top {
			continue
		}
		parent := r.nodes[n.rec.PPID]
		if parent == nil || parent.pid == 0 {
			parent = r.top
		}
		cloner, flags := parent, sharedCloneFlags(n.rec, parent.rec, r.exact)
		if parent.rec != nil {
			// An fs context or fd table shared with a sibling only: cloned by that sibling
			// (thaw_tree_clone.go).
			if sib, sf := siblingCloner(n.rec, parent.rec, r.nodes, r.exact); sib != nil {
				cloner, flags = sib, sf
			}
		}
		if g := r.ghostCloner(n, parent); g != nil {
			// Born in a session whose leader is not in the checkpoint: the ghost's child until
			// it exits (thaw_tree_ghosts.go).
			cloner, parent, flags = g, g, 0
		}
		tid, err := r.create(cloner, parent, pid, flags)
		if err != nil {
			return 0, nil, fmt.Errorf("creating pid %d: %w", pid, err)
		}
		n.pid = tid
		n.task = r.ns.TaskWithID(kernel.ThreadID(tid))
		r.register(tid, n)
		switch {
		case n.rec.SID == n.rec.PID:
			if err := r.must(n, agentCmd{op: opSetsid}); err != nil {
				return 0, nil, fmt.Errorf("pid %d: setsid: %w", pid, err)
			}
			r.takeControllingTTY(t, pid, n)
		case n.rec.PGID == n.rec.PID:
			if err := r.must(n, agentCmd{op: opNewPgrp}); err != nil {
				return 0, nil, fmt.Errorf("pid %d: setpgid: %w", pid, err)
			}
		}
	}
	for _, pid := range pids {
		n := r.nodes[pid]
		tg := n.task.ThreadGroup()
		if !r.exact && (r.nodes[n.rec.PGID] == nil || r.nodes[n.rec.SID] == nil) {
			// Restored as children of the caller: a group or session led from outside the tree
			// (the original container's) cannot be joined; the process stays in the caller's.
			continue
		}
		want := mapped(n.rec.PGID)
		if cur := int32(r.ns.IDOfProcessGroup(tg.ProcessGroup())); cur != want {
			cmd := agentCmd{op: opJoinPgrp, arg: int64(want)}
			if want == n.pid {
				cmd = agentCmd{op: opNewPgrp}
			}
			if err := r.must(n, cmd); err != nil {
				return 0, nil, fmt.Errorf("pid %d: joining process group %d: %w", pid, want, err)
			}
		}
		if cur, want := int32(r.ns.IDOfSession(tg.Session())), mapped(n.rec.SID); cur != want {
			return 0, nil, fmt.Errorf("pid %d: in session %d, recorded %d (a session whose leader forked before setsid): %w", pid, cur, want, errInvalidImage)
		}
	}
	if err := r.endGhosts(); err != nil {
		return 0, nil, err
	}
	// Every group exists: the container terminal's foreground one again (thaw_tree_stdio.go).
	r.restoreStdioForeground(t)
	// 4: zombies.
	for _, pid := range pids {
		n := r.nodes[pid]
		if z := n.rec.Zombie; z != nil {
			ws := linux.WaitStatusExit(int32(z.Code))
			if z.Signal != 0 {
				ws = linux.WaitStatusTerminationSignal(linux.Signal(z.Signal))
			}
			if err := r.must(n, agentCmd{op: opExit, ws: ws}); err != nil {
				return 0, nil, fmt.Errorf("pid %d: exit: %w", pid, err)
			}
		}
	}
	// Shared open file descriptions and objects: one each, handed over.
	if err := r.shareFiles(t); err != nil {
		return 0, nil, err
	}
	if err := r.shareObjects(t); err != nil {
		return 0, nil, err
	}
	r.images = nil
	if err := r.awaitThreadAgents(t); err != nil { // thaw_tree_tids.go
		return 0, nil, err
	}
	r.shareFDTables() // thaw_tree_files.go
	// 5: prepare every thaw, then let them all go.
	for _, pid := range pids {
		n := r.nodes[pid]
		if n.rec.Zombie != nil {
			continue
		}
		n.thawStart = time.Now()
		if err := r.must(n, agentCmd{op: opPrepare}); err != nil {
			return 0, nil, fmt.Errorf("pid %d: %w", pid, err)
		}
		if n.rec.Stopped != nil && n.plan != nil {
			n.plan.stopSignal = linux.Signal(n.rec.Stopped.Signal) // thaw_tree_stopped.go
		}
	}
	if err := r.commitShared(t); err != nil {
		return 0, nil, err
	}
	r.releaseShared(t)
	for _, pid := range pids {
		n := r.nodes[pid]
		if n.rec.Zombie == nil && !n.self {
			n.cmds <- agentCmd{op: opThaw}
		}
	}
	if r.self {
		plan := r.top.plan
		r.top.plan = nil
		r.top.releaseThawReq(t)
		if plan.inPlace {
			return thawInPlace(t, plan, r.top.thawStart) // thaw_tree_tids.go
		}
		return execThaw(t, plan, r.top.thawStart)
	}
	t.MemoryManager().MUnmap(t, r.tramp, hostarch.PageSize)
	rootPid := int32(0)
	for _, pid := range pids {
		if n := r.nodes[pid]; n.rec.PPID == 0 || r.nodes[n.rec.PPID] == nil {
			rootPid = n.pid
			break
		}
	}
	return uintptr(rootPid), nil, nil
}

// must runs cmd on n and returns its error.
func (r *treeRestore) must(n *restoreNode, cmd agentCmd) error {
	rep, err := r.do(n, cmd)
	if err != nil {
		return err
	}
	return rep.err
}

// releaseThawReq drops the image reference of n's thaw request.
func (n *restoreNode) releaseThawReq(t *kernel.Task) {
	if n.thawReq.file != nil {
		n.thawReq.file.DecRef(t)
		n.thawReq.file = nil
	}
}

// releaseAll drops every reference the restore holds.
func (r *treeRestore) releaseAll(t *kernel.Task) {
	for _, n := range r.nodes {
		if n.plan != nil {
			n.plan.release(t)
			n.plan = nil
		}
		n.releaseThawReq(t)
	}
	r.releaseShared(t)
}

// unregister removes r from the registry.
func (r *treeRestore) unregister() {
	restores.mu.Lock()
	delete(restores.m, r.id)
	restores.mu.Unlock()
}

// abandon kills every process the restore created and reaps the coordinator's own children
// among them.
func (r *treeRestore) abandon(t *kernel.Task) {
	r.mu.Lock()
	r.failed = true
	var tids []int32
	for tid := range r.registered {
		tids = append(tids, tid)
	}
	r.mu.Unlock()
	for _, tid := range tids {
		if task := r.ns.TaskWithID(kernel.ThreadID(tid)); task != nil && task.ThreadGroup() != t.ThreadGroup() {
			task.ThreadGroup().SendSignal(&linux.SignalInfo{Signo: int32(linux.SIGKILL)})
		}
	}
	for _, tid := range tids {
		task := r.ns.TaskWithID(kernel.ThreadID(tid))
		if task == nil || task.ThreadGroup() == t.ThreadGroup() {
			continue
		}
		if leader := task.ThreadGroup().Leader(); leader == task && leader.Parent() != nil && leader.Parent().ThreadGroup() == t.ThreadGroup() {
			if err := reapChild(t, tid); err != nil {
				t.Warningf("ckpt: reaping restored pid %d: %v", tid, err)
			}
		}
	}
	r.releaseAll(t)
	t.MemoryManager().MUnmap(t, r.tramp, hostarch.PageSize)
}
