package ckpt

import (
	"fmt"
	"sort"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/context"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/log"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// A tree freeze (CKPT_FREEZE_TREE) runs on the caller's task goroutine as the coordinator:
//
//  0. unless CKPT_TREE_KILL, take and drop a copy-on-write snapshot of each process of the tree
//     while everything still runs, so that the snapshots taken in step 2 are cheap
//     (freeze_tree_presnap.go);
//  1. select the tree: pid and its descendants (by the parent links of the processes' leaders),
//     or every process of the caller's PID namespace but the caller;
//  2. register a treeWork on each live process and wait until every one has captured itself and
//     parked; zombies are recorded with their exit status; processes that fork or exit meanwhile
//     are picked up by selecting again until the set no longer changes (parked processes cannot
//     fork or exit, so this ends);
//  3. with everything parked, build the manifest (who shares which fd table, open file, object);
//  4. release every process that has a copy-on-write snapshot (unless CKPT_TREE_KILL: then all stay
//     parked), write the images in pid order into the tree stream, releasing each process without a
//     snapshot once its image is written, then the manifest;
//  5. with CKPT_TREE_KILL, keep the tree parked until the caller's process has exited, then SIGKILL
//     every process of the tree and release it (killTreeAfter).
//
// Any failure releases every process (none is killed) and fails the syscall.

// treeFreezeRequest is a validated CKPT_FREEZE_TREE call.
type treeFreezeRequest struct {
	file *vfs.FileDescription // The stream goes here; a reference is held.
	root int32                // 0: every process of the namespace.
	kill bool                 // CKPT_TREE_KILL.
	// digest is the algorithm of the manifest's digests (CKPT_TREE_SHA256: treeDigest).
	digest treefmt.DigestAlg
	// images are the image fds (freeze_tree_writer.go), referenced.
	images []*vfs.FileDescription
}

// treeMember is one process of a tree being frozen.
type treeMember struct {
	tg   *kernel.ThreadGroup
	pid  int32
	work *treeWork // nil for a zombie.
	// target is the thread work was registered on.
	target *kernel.Task
	zombie *treefmt.ExitStatus
	// stoppedSince is when all of the process's threads were first seen stopped by something else
	// than a group stop (a vfork, another freeze) while its work had not started.
	stoppedSince time.Time
}

// treeStoppedGrace is how long a process may sit in a stop that is neither a group stop (captured
// from outside, freeze_tree_stopped.go) nor a ptrace stop (refused at once) before a tree freeze
// gives up on it: a vfork parent, or a process another freeze holds.
const treeStoppedGrace = 200 * time.Millisecond

// newTreeFreezeRequest validates the arguments of CKPT_FREEZE_TREE.
func newTreeFreezeRequest(t *kernel.Task, fd, pid, flags int32) (treeFreezeRequest, error) {
	if pid < 0 || flags&^(CKPT_TREE_KILL|CKPT_TREE_SHA256|-1<<CKPT_TREE_IMAGE_FDS_SHIFT) != 0 {
		return treeFreezeRequest{}, linuxerr.EINVAL
	}
	file, err := openFile(t, fd, true /* write */)
	if err != nil {
		return treeFreezeRequest{}, err
	}
	images, err := openTreeImageFiles(t, flags)
	if err != nil {
		file.DecRef(t)
		return treeFreezeRequest{}, err
	}
	return treeFreezeRequest{file: file, root: pid, kill: flags&CKPT_TREE_KILL != 0, digest: treeDigest(flags), images: images}, nil
}

// freezeTree implements CKPT_FREEZE_TREE.
//
// Preconditions: running on t's task goroutine.
func freezeTree(t *kernel.Task, req treeFreezeRequest) error {
	defer req.file.DecRef(t)
	defer dropFiles(t, req.images)
	start := time.Now()
	if !req.kill {
		// Only a tree that runs on after the freeze gains from it (freeze_tree_presnap.go).
		preSnapshotTree(t, req.root)
	}
	preSnapped := time.Since(start)
	start = time.Now()
	members, err := stopTreeAroundVforks(t, req.root) // freeze_tree_vfork.go
	handedOff := false
	defer func() {
		if handedOff {
			return
		}
		// Every failure, and success without CKPT_TREE_KILL, ends the parking.
		releaseMembers(t, members)
	}()
	if err != nil {
		return err
	}
	stopped := time.Since(start)
	manifest := buildManifest(t, req.root, members)
	recordStopped(manifest, members) // freeze_tree_stopped.go
	// The container's in-sandbox filesystems, while everything is parked (freeze_tree_fs.go).
	fsCaps, err := captureFilesystems(t, req.root)
	if err != nil {
		return err
	}
	defer closeCaptures(fsCaps)
	// The longest time a process released here was held: from the start of its capture (it ran
	// no user code after that) to its release; the pause the freeze itself caused.
	var longest time.Duration
	if !req.kill {
		released := time.Now()
		for _, m := range members {
			if m.work != nil && m.work.snap != nil {
				closeRelease(m.work)
				longest = max(longest, released.Sub(m.work.began))
			}
		}
	}
	sw := treefmt.NewStreamWriter(&treeWriter{t: t, f: req.file})
	sw.SetDigest(req.digest) // Every file's digest has this algorithm (freeze_tree_writer.go).
	if err := writeFilesystems(sw, fsCaps, manifest); err != nil {
		return err
	}
	images := &treeImages{t: t, sw: sw, files: req.images}
	written, err := images.writeAll(members, manifest, req.kill) // freeze_tree_writer.go
	if err != nil {
		return err
	}
	if err := sw.BeginFile(treefmt.ManifestName); err != nil {
		return err
	}
	if err := manifest.Encode(sw); err != nil {
		return fmt.Errorf("writing the manifest: %w", err)
	}
	if err := sw.End(); err != nil {
		return err
	}
	if req.kill {
		handedOff = true
		go killTreeAfter(t.ThreadGroup(), members)
	}
	t.Infof("ckpt: froze tree %d: %d processes, %d image bytes, %d images in image files; pre-snapshots %v, then all stopped after %v, longest stop of a process released before the writes %v, total %v, kill=%t",
		req.root, len(members), written, images.next, preSnapped, stopped, longest, time.Since(start), req.kill)
	return nil
}

// killTreeAfter waits until the caller's process caller has exited, then kills every process of
// the frozen tree and releases it, if the caller exited with status 0. Until then the tree stays
// parked, exactly as checkpointed: the caller may still be copying the stream somewhere (a guest
// tool splitting it into a directory, which would die with the container if its init were killed
// first; the host's helper waiting for the host to have written every file). A caller that exits
// otherwise could not store the stream: the tree is released and runs on.
//
// It runs on a plain goroutine; the parked tasks notice their release or their kill on their own.
func killTreeAfter(caller *kernel.ThreadGroup, members []*treeMember) {
	for {
		leader := caller.Leader()
		if leader == nil || liveThread(leader) == nil {
			break
		}
		time.Sleep(treePoll)
	}
	if ws := caller.ExitStatus(); !ws.Exited() || ws.ExitStatus() != 0 {
		log.Infof("ckpt: tree freeze: the caller ended with wait status %#x, not a 0 exit: the tree runs on, not killed", uint32(ws))
		for _, m := range members {
			if m.work != nil {
				closeRelease(m.work)
			}
		}
		return
	}
	for _, m := range members {
		if m.work != nil {
			m.tg.SendSignal(&linux.SignalInfo{Signo: int32(linux.SIGKILL)})
		}
	}
	for _, m := range members {
		if m.work != nil {
			closeRelease(m.work)
		}
	}
}

// closeRelease releases a parked process (idempotent, and safe from several goroutines: a capture
// released after its coordinator went is released from a goroutine of releaseWork's).
func closeRelease(w *treeWork) {
	w.mu.Lock()
	defer w.mu.Unlock()
	select {
	case <-w.release:
	default:
		close(w.release)
	}
}

// releaseMembers ends the work of every member that has one (releaseWork).
func releaseMembers(t *kernel.Task, members []*treeMember) {
	for _, m := range members {
		if m.work != nil {
			releaseWork(t, m.work)
		}
	}
}

// releaseWork ends w: cancels it if it never started, otherwise releases it and drops its
// snapshot, at once if its capture is over, else when it is.
//
// It never waits for a capture: a capture runs on the member's goroutine and may itself wait,
// for as long as another freeze of the member's process runs (one stuck writing into a full pipe:
// for ever). The coordinator, failing or killed, must not wait with it: it did, in a plain channel
// receive that no kill ends, and a killed tree freezer never went (docs/fuzzing.md, finding 4).
func releaseWork(t *kernel.Task, w *treeWork) {
	if w.cancel() {
		return
	}
	select {
	case <-w.captured:
		dropTreeSnapshot(t, w)
		closeRelease(w)
	default:
		ctx := t.Kernel().SupervisorContext()
		go func() {
			<-w.captured
			dropTreeSnapshot(ctx, w)
			closeRelease(w)
		}()
	}
}

// dropTreeSnapshot drops w's copy-on-write snapshot, if any.
//
// Preconditions: w's capture is over.
func dropTreeSnapshot(ctx context.Context, w *treeWork) {
	if w.snap != nil {
		w.snap.DecUsers(ctx)
		w.snap = nil
	}
}

// selectTree returns the thread groups of the tree, each with its pid: root and its descendants,
// or (root 0) every process of t's PID namespace but t's. The caller may not be part of the tree
// nor a child of one of its processes (EINVAL): its parent would be restored waiting for it.
func selectTree(t *kernel.Task, root int32) (map[*kernel.ThreadGroup]int32, error) {
	ns := t.PIDNamespace()
	self := t.ThreadGroup()
	parent := make(map[*kernel.ThreadGroup]*kernel.ThreadGroup)
	ids := make(map[*kernel.ThreadGroup]int32)
	for _, tg := range ns.ThreadGroups() {
		id := int32(ns.IDOfThreadGroup(tg))
		leader := tg.Leader()
		if id == 0 || leader == nil {
			continue
		}
		ids[tg] = id
		if p := leader.Parent(); p != nil {
			parent[tg] = p.ThreadGroup()
		}
	}
	inTree := func(tg *kernel.ThreadGroup) bool {
		if root == 0 {
			return true
		}
		for n := tg; n != nil; n = parent[n] {
			if ids[n] == root {
				return true
			}
		}
		return false
	}
	if root != 0 {
		found := false
		for tg, id := range ids {
			found = found || id == root
			_ = tg
		}
		if !found {
			return nil, linuxerr.ESRCH
		}
	}
	out := make(map[*kernel.ThreadGroup]int32)
	for tg, id := range ids {
		if tg == self || !inTree(tg) {
			continue
		}
		if tg.PIDNamespace() != ns {
			t.Infof("ckpt: tree freeze: pid %d is in a nested PID namespace (not supported)", id)
			return nil, linuxerr.EINVAL
		}
		out[tg] = id
	}
	if root != 0 && inTree(self) {
		t.Infof("ckpt: tree freeze: the caller is part of tree %d", root)
		return nil, linuxerr.EINVAL
	}
	if p := parent[self]; p != nil && out[p] != 0 {
		t.Infof("ckpt: tree freeze: the caller's parent %d is part of the tree", out[p])
		return nil, linuxerr.EINVAL
	}
	if len(out) == 0 {
		return nil, linuxerr.ESRCH
	}
	return out, nil
}

// stopTree selects the tree and stops it (see the comment at the top). It returns the members in
// pid order; the caller must release their works on every path.
func stopTree(t *kernel.Task, root int32) ([]*treeMember, error) {
	members := make(map[*kernel.ThreadGroup]*treeMember)
	list := func() []*treeMember {
		out := make([]*treeMember, 0, len(members))
		for _, m := range members {
			out = append(out, m)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].pid < out[j].pid })
		return out
	}
	for {
		sel, err := selectTree(t, root)
		if err != nil {
			return list(), err
		}
		changed := false
		for tg, pid := range sel {
			if members[tg] == nil {
				m := &treeMember{tg: tg, pid: pid}
				if err := checkTreeMember(t, m); err != nil {
					return list(), err
				}
				members[tg] = m
				changed = true
			}
		}
		// Zombies may have been reaped meanwhile (by a parent that was not parked yet).
		for tg, m := range members {
			if _, ok := sel[tg]; !ok {
				if m.work != nil && m.work.isCaptured() && m.work.err == nil {
					return list(), fmt.Errorf("pid %d left the tree while parked: %w", m.pid, linuxerr.EAGAIN)
				}
				if m.work != nil {
					releaseWork(t, m.work)
				}
				delete(members, tg)
				changed = true
			}
		}
		settled, err := advanceMembers(t, members)
		if err != nil {
			return list(), err
		}
		if settled && !changed {
			return list(), nil
		}
		if !sleepUnlessKilled(t, siblingPoll) {
			return list(), fmt.Errorf("killed while freezing tree %d: %w", root, linuxerr.EINTR)
		}
	}
}

// checkTreeMember checks that the caller may freeze m's process (ptrace access, dumpable).
func checkTreeMember(t *kernel.Task, m *treeMember) error {
	leader := m.tg.Leader()
	if leader == nil {
		return nil // Being released; the next selection drops it.
	}
	if live := liveThread(leader); live != nil {
		if !t.CanTrace(leader, true /* attach */) {
			t.Infof("ckpt: tree freeze: may not trace pid %d", m.pid)
			return linuxerr.EPERM
		}
		if err := checkDumpable(t, live); err != nil && !linuxerr.Equals(linuxerr.ESRCH, err) {
			t.Infof("ckpt: tree freeze: pid %d is not dumpable", m.pid)
			return err
		}
	}
	return nil
}

// advanceMembers moves each member on: registers work on live processes, records zombies, notices
// works that finished, and reports whether every member is settled (captured and parked, or a
// zombie).
func advanceMembers(t *kernel.Task, members map[*kernel.ThreadGroup]*treeMember) (bool, error) {
	settled := true
	for _, m := range members {
		if m.work != nil && m.work.isCaptured() {
			if m.work.err != nil {
				return false, fmt.Errorf("pid %d: %w", m.pid, m.work.err)
			}
			continue
		}
		leader := m.tg.Leader()
		live := (*kernel.Task)(nil)
		if leader != nil {
			live = liveThread(leader)
		}
		if live == nil {
			// Exiting or exited: a zombie once its last thread is gone.
			if m.work != nil && !m.work.cancel() {
				settled = false // It started after all; wait for its result.
				continue
			}
			m.work, m.target = nil, nil
			if leader != nil && leader.ExitState() == kernel.TaskExitZombie && zombieDone(m.tg) {
				ws := m.tg.ExitStatus()
				m.zombie = &treefmt.ExitStatus{Code: int(ws.ExitStatus())}
				if ws.Signaled() {
					m.zombie = &treefmt.ExitStatus{Signal: int(ws.TerminationSignal()), Core: ws.CoreDumped()}
				}
				continue
			}
			settled = false
			continue
		}
		m.zombie = nil
		if m.work != nil && m.target != nil && m.target.ExitState() != kernel.TaskExitNone && m.work.cancel() {
			m.work = nil // Its thread exited before the work ran: register again on a live one.
		}
		if m.work == nil {
			m.work = &treeWork{captured: make(chan struct{}), release: make(chan struct{}), registered: time.Now()}
			m.target = live
			live.RegisterWork(m.work)
			live.BeginExternalStop()
			live.EndExternalStop()
			m.stoppedSince = time.Time{}
		}
		settled = false
		if allStopped(m.tg) {
			// A group stop: captured from outside (freeze_tree_stopped.go).
			if done, err := captureStoppedMember(t, m); err != nil || done {
				if err != nil {
					return false, fmt.Errorf("pid %d: %w", m.pid, err)
				}
				continue
			}
			if child := vforkChild(t, m.tg); child != 0 {
				return false, &vforkInFlight{parent: m.pid, child: child} // freeze_tree_vfork.go
			}
			if m.stoppedSince.IsZero() {
				m.stoppedSince = time.Now()
			} else if time.Since(m.stoppedSince) > treeStoppedGrace {
				t.Infof("ckpt: tree freeze: pid %d sits in a stop that is neither a group stop nor a ptrace stop and cannot capture itself", m.pid)
				return false, linuxerr.EBUSY
			}
		} else {
			m.stoppedSince = time.Time{}
		}
	}
	return settled, nil
}

// zombieDone reports whether every thread of tg has exited (only the zombie leader is left).
func zombieDone(tg *kernel.ThreadGroup) bool {
	done := true
	tg.ForEachTask(func(o *kernel.Task) bool {
		if o.ExitState() < kernel.TaskExitZombie {
			done = false
		}
		return done
	})
	return done
}

// allStopped reports whether every live thread of tg sits in a stop (a group or ptrace stop).
func allStopped(tg *kernel.ThreadGroup) bool {
	n, stopped := 0, 0
	tg.ForEachTask(func(o *kernel.Task) bool {
		if o.ExitState() == kernel.TaskExitNone {
			n++
			if o.TaskGoroutineState() == kernel.TaskGoroutineStopped {
				stopped++
			}
		}
		return true
	})
	return n > 0 && n == stopped
}
