package ckpt

import (
	"fmt"
	"sort"
	"sync/atomic"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// Kernel objects shared between the processes of a restored tree (docs/tree-format.md, "Shared
// objects"). Every image of one freeze names each object it has with a key that is the same in
// all images of that freeze (imgfmt.Object.Key): the two ends of a pipe between a producer and a
// consumer, a socket pair between a parent and its child, a listening socket inherited by
// workers, an eventfd or memfd inherited by fork. An object whose key appears in the images of
// several processes is rebuilt ONCE, by the coordinator, before any thaw is prepared:
//
//   - its descriptions are the union of the processes' open file descriptions on it, joined by the
//     manifest's description ids (fds[].file): a description several processes share (fork) is
//     one description, so offsets and status flags stay shared;
//   - its state comes from one image (all images of one freeze saw the same object at the same
//     instant: a pipe's bytes are in every image that has an end, and are written once), except
//     for sockets, whose state is per socket: each end comes from an image that has it;
//   - it is rebuilt by the object code of a single thaw (thawObject) as if one process had had all
//     of its descriptions, from a synthetic process holding one fd per description;
//   - each process's thaw takes its descriptions of it (thawRequest.share) instead of
//     rebuilding the object from its own image, and maps it if it has shared mappings of it;
//   - its commit step (a named FIFO's refill, a datagram socket's reconnect) runs once, by the
//     coordinator, after every process has prepared its thaw and before any thaws.
//
// An epoll instance cannot be rebuilt ahead: its interests name files of the capturing process,
// some of which only that process's thaw reopens. The thaw of the lowest pid that has it rebuilds
// it in its prepare phase and registers it by key (treeShare.epolls); the thaws of the others,
// prepared after it, take that instance and add the interests of their own image on files the
// instance does not watch yet (on the same description: EEXIST, skipped).
//
// Objects that stay per process: SysV objects (namespace-wide: the first process's thaw creates
// them, the others find them alive), terminals, timers without fds, /proc and nsfs files.

// sharedKinds are the object kinds rebuilt once for the whole tree.
var sharedKinds = map[imgfmt.ObjectKind]bool{
	imgfmt.ObjPipe:       true,
	imgfmt.ObjUnixSocket: true,
	imgfmt.ObjInetSocket: true,
	imgfmt.ObjEventFD:    true,
	imgfmt.ObjTimerFD:    true,
	imgfmt.ObjSignalFD:   true,
	imgfmt.ObjFileData:   true,
	imgfmt.ObjTerminal:   true, // thaw_tree_terminal.go
}

// sharedObject is one object of the tree rebuilt once.
type sharedObject struct {
	kind imgfmt.ObjectKind
	key  uint64
	// th is the rebuilt object: one file per merged description.
	th *thawedObject
	// refs counts the coordinator's reference and one per process thaw that took the object.
	refs atomic.Int32
	// committed is set once th's commit step has run.
	committed bool
}

func (s *sharedObject) decRef(t *kernel.Task) {
	if s.refs.Add(-1) == 0 {
		s.th.release(t)
	}
}

// treeShare is what a tree restore shares with one process's thaw (thawRequest.share).
type treeShare struct {
	// objects holds the objects rebuilt once for several processes, by the image's object ID.
	objects map[uint32]*sharedUse
	// epolls holds the epoll instances rebuilt so far by the restore's thaws, by object key,
	// each with a reference the restore drops (releaseShared). The map is the restore's, shared
	// by every process; prepares run one after the other, so it needs no lock.
	epolls map[uint64]*vfs.FileDescription
	// rebuilt holds the mounts the container restore made afresh: their files are not checked
	// for having been replaced since the freeze (thaw_identity.go).
	rebuilt rebuiltMounts
}

// rebuiltMounts returns s.rebuilt; nil for a nil s (a thaw that is no tree restore).
func (s *treeShare) rebuiltMounts() rebuiltMounts {
	if s == nil {
		return nil
	}
	return s.rebuilt
}

// use returns the shared object that stands for the image's object id, or nil.
func (s *treeShare) use(id uint32) *sharedUse {
	if s == nil {
		return nil
	}
	return s.objects[id]
}

// sharedUse is one process's view of a shared object: descs[d] is the merged description of the
// image's description d.
type sharedUse struct {
	obj   *sharedObject
	descs []int
	// commit, if not nil, is the process's own commit step for the object (a terminal that was
	// its controlling one: thaw_tree_terminal.go).
	commit func(t *kernel.Task) error
}

// take returns the thawed object a process's thaw uses for its image object: its own references
// on the descriptions, the shared mappings' mapInto, and a reference on the shared object that its
// release drops. No commit: the coordinator runs the shared object's.
func (u *sharedUse) take() *thawedObject {
	u.obj.refs.Add(1)
	th := &thawedObject{files: make([]*vfs.FileDescription, len(u.descs)), mapInto: u.obj.th.mapInto, drop: u.obj.decRef, commit: u.commit}
	for d, m := range u.descs {
		if f := u.obj.th.files[m]; f != nil {
			f.IncRef()
			th.files[d] = f
		}
	}
	return th
}

// objectMember is one process's image object of a shared object.
type objectMember struct {
	pid  int32
	proc *imgfmt.Process
	obj  *imgfmt.Object
}

// thawingPIDs returns the pids of the tree's processes that thaw an image (not zombies), ascending.
func (r *treeRestore) thawingPIDs() []int32 {
	pids := make([]int32, 0, len(r.nodes))
	for pid, n := range r.nodes {
		if n.rec.Zombie == nil && n.thawReq.file != nil {
			pids = append(pids, pid)
		}
	}
	sort.Slice(pids, func(i, j int) bool { return pids[i] < pids[j] })
	return pids
}

// groupObjects groups the keyed objects of the kinds want accepts in the images of pids by key,
// and returns the groups and the keys in the order they were first seen.
func (r *treeRestore) groupObjects(t *kernel.Task, pids []int32, want func(imgfmt.ObjectKind) bool) (map[uint64][]objectMember, []uint64, error) {
	groups := make(map[uint64][]objectMember)
	var order []uint64
	for _, pid := range pids {
		p, err := r.image(t, pid)
		if err != nil {
			return nil, nil, err
		}
		for i := range p.Objects {
			o := &p.Objects[i]
			if o.Key == 0 || !want(o.Kind()) {
				continue
			}
			if _, seen := groups[o.Key]; !seen {
				order = append(order, o.Key)
			}
			groups[o.Key] = append(groups[o.Key], objectMember{pid: pid, proc: p, obj: o})
		}
	}
	return groups, order, nil
}

// shareObjects rebuilds every object that the images of several processes have and hands each
// process's thaw its descriptions of it (see the comment at the top).
func (r *treeRestore) shareObjects(t *kernel.Task) error {
	start := time.Now()
	pids := r.thawingPIDs()
	groups, order, err := r.groupObjects(t, pids, func(k imgfmt.ObjectKind) bool { return sharedKinds[k] })
	if err != nil {
		return err
	}
	order = joinTCPPeers(groups, order)
	order = joinTCPAcceptQueues(groups, order)  // thaw_tree_tcp.go
	order = joinUnixAcceptQueues(groups, order) // thaw_tree_unix.go
	r.epolls = make(map[uint64]*vfs.FileDescription)
	for _, pid := range pids {
		r.nodes[pid].thawReq.share = &treeShare{epolls: r.epolls, rebuilt: r.rebuilt}
	}
	for _, key := range order {
		members := groups[key]
		if len(members) < 2 {
			continue // One process: its own thaw rebuilds it, as for a single thaw.
		}
		var uses []*sharedUse
		e, early := r.earlyTerminals[key]
		if early {
			uses = e.uses
		}
		if !early {
			so, built, err := r.buildShared(t, key, members)
			if err != nil {
				return fmt.Errorf("object %#x shared by pids %s: %w", key, memberPids(members), err)
			}
			r.shared, uses = append(r.shared, so), built
		} else if len(uses) != len(members) {
			return fmt.Errorf("terminal %#x: %d processes have it, %d did before: %w", key, len(members), len(uses), errInvalidImage)
		}
		for i, m := range members {
			uses[i].commit = terminalControlCommit(m.obj, uses[i])
			n := r.nodes[m.pid]
			if n.thawReq.share.objects == nil {
				n.thawReq.share.objects = make(map[uint32]*sharedUse)
			}
			n.thawReq.share.objects[m.obj.ID] = uses[i]
		}
	}
	if len(r.shared) > 0 {
		t.Infof("ckpt: tree restore: %d objects shared between processes rebuilt once in %v (images decoded included)", len(r.shared), time.Since(start))
	}
	return nil
}

// memberPids lists the pids of members for messages.
func memberPids(members []objectMember) string {
	s := ""
	for i, m := range members {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprint(m.pid)
	}
	return s
}

// descRef names one image description of a member.
type descRef struct {
	member int
	desc   uint32
}

// buildShared rebuilds the object of members (the same key in several images) once and returns it
// with each member's use of it.
func (r *treeRestore) buildShared(t *kernel.Task, key uint64, members []objectMember) (*sharedObject, []*sharedUse, error) {
	kind := members[0].obj.Kind()
	// Merged descriptions, by the manifest's open file description id.
	var merged []descRef
	byID := make(map[string]int)
	uses := make([]*sharedUse, len(members))
	for i, m := range members {
		if m.obj.Kind() != kind {
			return nil, nil, invalidf("the key names a %d object in pid %d and a %d object in pid %d", kind, members[0].pid, m.obj.Kind(), m.pid)
		}
		rec := r.m.Process(m.pid)
		uses[i] = &sharedUse{descs: make([]int, m.obj.Descs())}
		for d := range uses[i].descs {
			id := fmt.Sprintf("%d/%d", m.pid, d) // Unknown to the manifest: a description of its own.
			for _, f := range m.obj.FDs {
				if f.Desc != uint32(d) {
					continue
				}
				for _, fd := range rec.FDs {
					if fd.FD == f.FD && fd.File != "" {
						id = fd.File
					}
				}
				break
			}
			j, ok := byID[id]
			if !ok {
				j = len(merged)
				byID[id] = j
				merged = append(merged, descRef{member: i, desc: uint32(d)})
			}
			uses[i].descs[d] = j
		}
	}
	body, err := mergeObjectBody(members, merged)
	if err != nil {
		return nil, nil, err
	}
	// A process that holds every description, at fds 3, 4, ...: the object code rebuilds all of
	// them (it leaves out descriptions that only fds 0–2 have).
	first := members[0].proc
	p := &imgfmt.Process{Info: first.Info, Cwd: first.Cwd}
	o := imgfmt.Object{ID: 1, Key: key, Body: body}
	for j, ref := range merged {
		m := members[ref.member]
		fd := int32(3 + j)
		for _, f := range m.obj.FDs {
			if f.Desc == ref.desc {
				if k := fileIndexOf(m.proc, f.FD); k >= 0 {
					rec := m.proc.Files[k]
					rec.FD = fd
					p.Files = append(p.Files, rec)
				}
				break
			}
		}
		o.FDs = append(o.FDs, imgfmt.ObjectFD{FD: fd, Desc: uint32(j)})
	}
	p.Objects = []imgfmt.Object{o}
	th, err := thawObject(t, p, &p.Objects[0], nil)
	if err != nil {
		return nil, nil, err
	}
	so := &sharedObject{kind: kind, key: key, th: th}
	so.refs.Store(1)
	for _, u := range uses {
		u.obj = so
	}
	return so, uses, nil
}

// mergeObjectBody returns the body of the object that has the merged descriptions: a socket's
// ends each from an image that has it, any other kind's state from the first image.
func mergeObjectBody(members []objectMember, merged []descRef) (imgfmt.ObjectBody, error) {
	switch members[0].obj.Body.(type) {
	case *imgfmt.UnixSocketObject:
		return mergeUnixBody(members, merged) // thaw_tree_unix.go
	case *imgfmt.InetSocketObject:
		return mergeInetBody(members, merged) // thaw_tree_tcp.go
	case *imgfmt.TerminalObject:
		return mergeTerminalBody(members, merged) // thaw_tree_terminal.go
	}
	return members[0].obj.Body, nil
}

// commitShared runs the commit step of every shared object, once every process has prepared its
// thaw.
func (r *treeRestore) commitShared(t *kernel.Task) error {
	for _, so := range r.shared {
		so.th.undo = nil
		if so.th.commit != nil && !so.committed {
			so.committed = true
			if err := so.th.commit(t); err != nil {
				return fmt.Errorf("shared object %#x: %w", so.key, err)
			}
		}
	}
	return nil
}

// releaseShared drops the coordinator's references on the shared objects and epoll instances
// (the thaws that took them hold their own).
func (r *treeRestore) releaseShared(t *kernel.Task) {
	for _, so := range r.shared {
		so.decRef(t)
	}
	r.shared = nil
	for _, f := range r.epolls {
		f.DecRef(t)
	}
	r.epolls = nil
}
