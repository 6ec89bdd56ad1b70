package ckpt

import (
	"errors"
	"fmt"
	"reflect"
	"sort"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/context"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/fspath"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
	"gvisor.dev/gvisor/pkg/usermem"
)

// inotify instances (issue 8 item 4, docs/notes-thaw.md "inotify"). gVisor has no getter for an
// instance's watches: they are the saved fields `Inotify.watches` (wd → *Watch) and
// `nextWatchMinusOne`, guarded by the unexported `Inotify.mu`, and the map changes under other
// processes (a watched file's deletion removes its watch), so it must not be read unlocked (a
// concurrent map write aborts the sentry). The one exported call that holds that lock and calls
// code of ours is AddWatch, which asks its target dentry for its watch set: the freeze passes a
// probe dentry whose Watches reads the map and then unwinds with a sentinel panic, recovered
// here; AddWatch's deferred unlock releases the lock and it returns before changing anything (no
// watch descriptor used, no event queued). Each watch's target (a *vfs.Dentry without its mount)
// is named by its path from the process's root, found by trying the mounts of the same filesystem
// type (PathnameReachable says which one it is under). docs/upstream-gaps.md "inotify".

// inotifyProbe is a vfs.DentryImpl for withInotifyLocked.
type inotifyProbe struct {
	vfsd vfs.Dentry
	// under runs with the instance's lock held.
	under func()
}

// inotifyProbeDone is the sentinel panic that ends the probe's AddWatch.
type inotifyProbeDone struct{}

func (*inotifyProbe) IncRef()                                                          {}
func (*inotifyProbe) TryIncRef() bool                                                  { return true }
func (*inotifyProbe) DecRef(context.Context)                                           {}
func (*inotifyProbe) InotifyWithParent(context.Context, uint32, uint32, vfs.EventType) {}
func (*inotifyProbe) OnZeroWatches(context.Context)                                    {}

// Watches runs p.under and unwinds AddWatch.
func (p *inotifyProbe) Watches() *vfs.Watches {
	p.under()
	panic(inotifyProbeDone{})
}

// withInotifyLocked runs under with i's watch lock held (see the comment at the top). under must
// not panic.
func withInotifyLocked(i *vfs.Inotify, under func()) (err error) {
	probe := &inotifyProbe{under: under}
	probe.vfsd.Init(probe)
	defer func() {
		switch r := recover(); r.(type) {
		case inotifyProbeDone:
		case nil:
			err = fmt.Errorf("inotify AddWatch returned without asking its target for its watches (gVisor changed: docs/upstream-gaps.md)")
		default:
			panic(r)
		}
	}()
	i.AddWatch(&probe.vfsd, 0)
	return nil
}

// inotifyWatchRef is one watch read under the lock.
type inotifyWatchRef struct {
	wd     int32
	mask   uint32
	target *vfs.Dentry
	// ref is true if the thaw holds a reference on target. A filesystem may keep a watched file's
	// dentry cached without references (gofer: its watches keep it); such a dentry cannot be
	// given one (TryIncRef fails at zero) and is used without: Go keeps its memory, and it only
	// goes away with its last watch, in which case its path may come out wrong or empty — the
	// watch was being removed anyway.
	ref bool
}

// release drops the reference on w's target, if any.
func (w *inotifyWatchRef) release(ctx context.Context) {
	if w.ref {
		w.target.DecRef(ctx)
		w.ref = false
	}
}

// readInotifyWatches reads i's watches and its last watch descriptor under its lock. Expired
// one-shot watches are left out.
func readInotifyWatches(i *vfs.Inotify) (watches []inotifyWatchRef, last int32, err error) {
	var readErr error
	lockErr := withInotifyLocked(i, func() {
		defer func() {
			if r := recover(); r != nil { // A reflect misuse after a gVisor change: fail the freeze.
				readErr = fmt.Errorf("reading the inotify watches: %v (gVisor changed?)", r)
			}
		}()
		watches, last, readErr = readInotifyWatchesLocked(i)
	})
	if lockErr != nil {
		err = lockErr
	} else {
		err = readErr
	}
	if err != nil {
		for i := range watches {
			watches[i].release(context.Background())
		}
		return nil, 0, err
	}
	sort.Slice(watches, func(a, b int) bool { return watches[a].wd < watches[b].wd })
	return watches, last, nil
}

// readInotifyWatchesLocked is readInotifyWatches's part under the lock.
func readInotifyWatchesLocked(i *vfs.Inotify) (watches []inotifyWatchRef, last int32, err error) {
	n, err := stateInt(i, "nextWatchMinusOne")
	if err != nil {
		return nil, 0, err
	}
	m, err := stateField(i, "watches")
	if err != nil || m.Kind() != reflect.Map {
		return nil, 0, fmt.Errorf("Inotify.watches: %v (gVisor changed)", err)
	}
	zero := new(vfs.Watch)
	dentryType := reflect.TypeFor[vfs.Dentry]()
	for it := m.MapRange(); it.Next(); {
		w := it.Value()
		var wd, expired int64
		var mask uint64
		var target reflect.Value
		f, err := stateFieldOf(w, zero, "wd")
		if err == nil {
			wd = f.Int()
			f, err = stateFieldOf(w, zero, "mask")
		}
		if err == nil {
			f, err = stateSubfield(f, "value", reflect.Uint32)
		}
		if err == nil {
			mask = f.Uint()
			f, err = stateFieldOf(w, zero, "expired")
		}
		if err == nil {
			f, err = stateSubfield(f, "value", reflect.Int32)
		}
		if err == nil {
			expired = f.Int()
			target, err = stateFieldOf(w, zero, "target")
		}
		if err == nil && (target.Kind() != reflect.Pointer || target.Type().Elem() != dentryType) {
			err = fmt.Errorf("Watch.target is a %s (gVisor changed)", target.Type())
		}
		if err != nil {
			for i := range watches {
				watches[i].release(context.Background())
			}
			return nil, 0, err
		}
		if expired != 0 || target.IsNil() {
			continue
		}
		// The target pointer, typed as the field's own exported type, so that its exported
		// methods can be called (a reference keeps it alive once the lock is released).
		d := reflect.NewAt(dentryType, target.UnsafePointer()).Interface().(*vfs.Dentry)
		watches = append(watches, inotifyWatchRef{wd: int32(wd), mask: uint32(mask), target: d, ref: d.TryIncRef()})
	}
	return watches, int32(n), nil
}

// captureInotify records an inotify instance's watches: wd, mask and the path of each target.
func captureInotify(t *kernel.Task, i *vfs.Inotify) (*imgfmt.InotifyObject, error) {
	refs, last, err := readInotifyWatches(i)
	if err != nil {
		return nil, err
	}
	defer func() {
		for i := range refs {
			refs[i].release(t)
		}
	}()
	o := &imgfmt.InotifyObject{LastWD: last}
	if o.Events, err = readInotifyEvents(i); err != nil {
		return nil, err
	}
	if len(refs) == 0 {
		return o, nil
	}
	root := t.FSContext().RootDirectory()
	if !root.Ok() {
		return nil, fmt.Errorf("no root directory")
	}
	defer root.DecRef(t)
	vfsObj := t.Kernel().VFS()
	mounts := vfsObj.GetAllMounts(t)
	defer func() {
		for _, mnt := range mounts {
			mnt.DecRef(t)
		}
	}()
	for _, w := range refs {
		path := inotifyTargetPath(t, vfsObj, root, mounts, w.target)
		if path == "" || len(path) > imgfmt.MaxPathLen {
			t.Infof("ckpt: freeze: inotify watch %d has no path from the root (deleted, or outside it): not recorded", w.wd)
			o.Dropped++
			continue
		}
		o.Watches = append(o.Watches, imgfmt.InotifyWatch{WD: w.wd, Mask: w.mask, Path: path})
	}
	return o, nil
}

// readInotifyEvents returns the events queued on i, oldest first, read through the stateify fields
// of its event list (Inotify.events → eventList.head → Event.eventEntry.next, .wd, .mask, .cookie,
// .name), read-only and without Inotify.evMu (no exported call holds it and calls back): the
// process is stopped, so only other processes' file operations can append meanwhile (such an
// event is taken or missed, as if it came before or after the freeze). The walk is bounded.
func readInotifyEvents(i *vfs.Inotify) ([]imgfmt.InotifyEvent, error) {
	list, err := stateField(i, "events")
	if err != nil {
		return nil, err
	}
	e, err := stateSubfield(list, "head", reflect.Pointer)
	if err != nil {
		return nil, err
	}
	var out []imgfmt.InotifyEvent
	for n := 0; !e.IsNil() && n < 1<<20; n++ {
		ev := e.Elem()
		wd, err := stateSubfield(ev, "wd", reflect.Int32)
		if err != nil {
			return nil, err
		}
		mask, err := stateSubfield(ev, "mask", reflect.Uint32)
		if err != nil {
			return nil, err
		}
		cookie, err := stateSubfield(ev, "cookie", reflect.Uint32)
		if err != nil {
			return nil, err
		}
		name, err := stateSubfield(ev, "name", reflect.Slice)
		if err != nil {
			return nil, err
		}
		link, err := stateSubfield(ev, "eventEntry", reflect.Struct)
		if err != nil {
			return nil, err
		}
		if e, err = stateSubfield(link, "next", reflect.Pointer); err != nil {
			return nil, err
		}
		// The name is NUL-padded to a multiple of the event size.
		b := make([]byte, 0, name.Len())
		for j := 0; j < name.Len() && name.Index(j).Uint() != 0; j++ {
			b = append(b, byte(name.Index(j).Uint()))
		}
		out = append(out, imgfmt.InotifyEvent{WD: int32(wd.Int()), Mask: uint32(mask.Uint()), Cookie: uint32(cookie.Uint()), Name: string(b)})
	}
	return out, nil
}

// inotifyTargetPath returns d's path from root, or "" if it is deleted or not reachable: the mounts
// whose root is of d's filesystem type are tried (PathnameReachable answers "" for one d is not
// under).
func inotifyTargetPath(t *kernel.Task, vfsObj *vfs.VirtualFilesystem, root vfs.VirtualDentry, mounts []*vfs.Mount, d *vfs.Dentry) string {
	if d.IsDead() {
		return ""
	}
	typ := reflect.TypeOf(d.Impl())
	for _, mnt := range mounts {
		if reflect.TypeOf(mnt.Root().Impl()) != typ {
			continue
		}
		if p, err := vfsObj.PathnameReachable(t, root, vfs.MakeVirtualDentry(mnt, d)); err == nil && p != "" {
			return p
		}
	}
	return ""
}

// inotifyFiller is a dentry outside every filesystem with a watch set of its own, watched and
// unwatched at thaw to skip watch descriptors.
type inotifyFiller struct {
	vfsd vfs.Dentry
	ws   vfs.Watches
}

func (*inotifyFiller) IncRef()                                                          {}
func (*inotifyFiller) TryIncRef() bool                                                  { return true }
func (*inotifyFiller) DecRef(context.Context)                                           {}
func (*inotifyFiller) InotifyWithParent(context.Context, uint32, uint32, vfs.EventType) {}
func (f *inotifyFiller) Watches() *vfs.Watches                                          { return &f.ws }
func (*inotifyFiller) OnZeroWatches(context.Context)                                    {}

// thawInotify makes a new inotify instance and adds the image's watches again by path, with their
// masks and watch descriptors (skipped descriptors are used and removed on a filler dentry, the
// IN_IGNORED events that leaves are read away). A watch whose path is gone is skipped (logged); its
// descriptor stays unused.
func thawInotify(t *kernel.Task, p *imgfmt.Process, o *imgfmt.Object, b *imgfmt.InotifyObject) (*thawedObject, error) {
	first := firstFile(p, o)
	if first == nil {
		return nil, fmt.Errorf("inotify without an fd: %w", errInvalidImage)
	}
	f, err := vfs.NewInotifyFD(t, t.Kernel().VFS(), first.StatusFlags&linux.O_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("new inotify instance: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.DecRef(t)
		}
	}()
	ino := f.Impl().(*vfs.Inotify)
	root := t.FSContext().RootDirectory()
	if !root.Ok() {
		return nil, fmt.Errorf("no root directory")
	}
	defer root.DecRef(t)
	filler := &inotifyFiller{}
	filler.vfsd.Init(filler)
	next := int32(1)
	skip := func(upto int32) error {
		for ; next < upto; next++ {
			wd := ino.AddWatch(&filler.vfsd, linux.IN_ACCESS)
			if wd != next {
				return fmt.Errorf("inotify filler got wd %d, want %d", wd, next)
			}
			if err := ino.RmWatch(t, wd); err != nil {
				return err
			}
		}
		return nil
	}
	restored := 0
	targets := map[int32]inotifyTarget{} // Restored watches, for their queued events.
	defer func() {
		for _, x := range targets {
			x.vd.DecRef(t)
		}
	}()
	for _, w := range b.Watches {
		if err := skip(w.WD); err != nil {
			return nil, err
		}
		pop := vfs.PathOperation{Root: root, Start: root, Path: fspath.Parse(w.Path), FollowFinalSymlink: w.Mask&linux.IN_DONT_FOLLOW == 0}
		vd, err := t.Kernel().VFS().GetDentryAt(t, t.Credentials(), &pop, &vfs.GetDentryOptions{})
		if err != nil {
			t.Infof("ckpt: thaw: inotify watch %d on %q: %v: not restored", w.WD, w.Path, err)
			continue // skip() uses the descriptor on the next round.
		}
		wd := ino.AddWatch(vd.Dentry(), w.Mask)
		if wd != w.WD {
			vd.DecRef(t)
			t.Infof("ckpt: thaw: inotify watch %d on %q is the same file as watch %d: merged", w.WD, w.Path, wd)
			continue
		}
		targets[wd] = inotifyTarget{vd: vd, mask: w.Mask}
		next++
		restored++
	}
	if err := skip(b.LastWD + 1); err != nil {
		return nil, err
	}
	if err := drainInotify(t, f); err != nil {
		return nil, err
	}
	queued, err := queueInotifyEvents(t, ino, b.Events, targets)
	if err != nil {
		return nil, err
	}
	t.Infof("ckpt: thaw: inotify fd %d: %d of %d watches, %d of %d queued events restored", first.FD, restored, len(b.Watches)+int(b.Dropped), queued, len(b.Events))
	ok = true
	return &thawedObject{files: []*vfs.FileDescription{f}}, nil
}

// inotifyTarget is a restored watch's file and mask.
type inotifyTarget struct {
	vd   vfs.VirtualDentry
	mask uint32
}

// queueInotifyEvents queues the image's events again, in order, through the restored watches'
// own Watch.Notify (the exported call a file's watch set makes), which queues an event with the
// watch's descriptor, name, mask and cookie. It reaches a watch through its file's watch set and
// the instance's id (stateify field Inotify.id). An event is lost (counted, logged) if its watch
// was not restored (removed at the freeze: its IN_IGNORED; path gone), if it has no event bit the
// watch's mask selects (IN_Q_OVERFLOW, IN_IGNORED, IN_UNMOUNT alone: Notify drops those), or if
// the watch is one-shot (Notify would expire it). It returns how many were queued.
func queueInotifyEvents(t *kernel.Task, ino *vfs.Inotify, events []imgfmt.InotifyEvent, targets map[int32]inotifyTarget) (int, error) {
	if len(events) == 0 {
		return 0, nil
	}
	id, err := stateUint(ino, "id")
	if err != nil {
		return 0, err
	}
	queued := 0
	for _, e := range events {
		x, ok := targets[e.WD]
		var w *vfs.Watch
		if ok && x.mask&linux.IN_ONESHOT == 0 && e.Mask&x.mask&linux.IN_ALL_EVENTS != 0 {
			if ws := x.vd.Dentry().Watches(); ws != nil {
				w = ws.Lookup(id)
			}
		}
		if w == nil {
			t.Infof("ckpt: thaw: inotify event (wd %d mask %#x %q) cannot be queued again: lost", e.WD, e.Mask, e.Name)
			continue
		}
		w.Notify(e.Name, e.Mask, e.Cookie)
		queued++
	}
	return queued, nil
}

// drainInotify reads away the events the fillers queued (IN_IGNORED), so the thawed queue starts
// empty.
func drainInotify(t *kernel.Task, f *vfs.FileDescription) error {
	buf := make([]byte, 64<<10)
	for {
		_, err := f.Read(t, usermem.BytesIOSequence(buf), vfs.ReadOptions{})
		if errors.Is(err, linuxerr.ErrWouldBlock) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("emptying the new inotify queue: %w", err)
		}
	}
}
