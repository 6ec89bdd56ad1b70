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
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
	"gvisor.dev/gvisor/pkg/waiter"
)

// epoll (ObjEpoll): the interest list has no getter. It is the saved field `interest` of
// vfs.EpollInstance, a map from epollInterestKey{file, num} to *epollInterest{mask, userData, ...},
// read through the stateify field route (stateify_fields.go; the nested, unexported types' field
// names are checked against their own generated StateFields). The map is read while the
// instance's interest lock is held, so that no epoll_ctl or close in another process sharing the
// instance or a watched file changes it under the read: the only exported call that runs code of
// ours under that lock is AddInterest, which calls the added file's EventRegister with the lock
// held. captureEpoll adds a probe file whose EventRegister does the read and then fails; the probe's
// entry (which AddInterest leaves behind when EventRegister fails) is deleted again at once.
//
// Each watched file is matched to the process's fds by identity (the lowest fd above 2 referring
// to it, else the lowest);
// interests on files that no fd refers to any more are counted as dropped and not restored. Thaw
// makes a new instance and adds every interest with its registered fd number, events (EPOLLET,
// EPOLLONESHOT, EPOLLEXCLUSIVE kept) and data, on the thawed file of its fd (nested instances
// are rebuilt inner first). Readiness is recomputed by AddInterest: what is ready at the thaw is
// reported, an edge reported before the freeze is reported again if the file is still ready; a
// disarmed EPOLLONESHOT interest comes back armed for EPOLLERR|EPOLLHUP only (gVisor always adds
// them), until the program re-arms it with EPOLL_CTL_MOD as before.

// errEpollProbeDone ends the probe's AddInterest once the interest list has been read.
var errEpollProbeDone = errors.New("ckpt: epoll probe done")

// epollProbe is the file captureEpoll adds to an instance to run code under its interest lock.
type epollProbe struct {
	vfsfd vfs.FileDescription
	vfs.FileDescriptionDefaultImpl
	vfs.DentryMetadataFileDescriptionImpl
	vfs.NoLockFD

	// underLock runs in EventRegister, with the instance's interest lock held.
	underLock func()
	ran       bool
}

// Release implements vfs.FileDescriptionImpl.Release.
func (*epollProbe) Release(context.Context) {}

// Epollable implements vfs.FileDescriptionImpl.Epollable.
func (*epollProbe) Epollable() bool { return true }

// Readiness implements waiter.Waitable.Readiness.
func (*epollProbe) Readiness(waiter.EventMask) waiter.EventMask { return 0 }

// EventRegister implements waiter.Waitable.EventRegister: it runs the probe's function.
func (p *epollProbe) EventRegister(*waiter.Entry) error {
	p.underLock()
	p.ran = true
	return errEpollProbeDone
}

// EventUnregister implements waiter.Waitable.EventUnregister.
func (*epollProbe) EventUnregister(*waiter.Entry) {}

// withInterestLock runs fn while ep's interest lock is held (see above).
func withInterestLock(t *kernel.Task, ep *vfs.EpollInstance, fn func()) error {
	vd := t.Kernel().VFS().NewAnonVirtualDentry("[ckpt-epoll-probe]")
	defer vd.DecRef(t)
	probe := &epollProbe{underLock: fn}
	if err := probe.vfsfd.Init(probe, linux.O_RDONLY, t.Credentials(), vd.Mount(), vd.Dentry(), &vfs.FileDescriptionOptions{UseDentryMetadata: true}); err != nil {
		return fmt.Errorf("epoll probe: %w", err)
	}
	defer probe.vfsfd.DecRef(t)
	const num = -1 // No fd has this number: the probe's key never collides with a real interest.
	err := ep.AddInterest(&probe.vfsfd, num, linux.EpollEvent{})
	if err := ep.DeleteInterest(&probe.vfsfd, num); err != nil && !linuxerr.Equals(linuxerr.ENOENT, err) {
		return fmt.Errorf("removing the epoll probe: %w", err)
	}
	if !errors.Is(err, errEpollProbeDone) || !probe.ran {
		return fmt.Errorf("epoll probe did not run (gVisor changed? see docs/upstream-gaps.md): %v: %w", err, errUnsupportedObject)
	}
	return nil
}

// captureEpoll records ep's interest list, matching each watched file to an fd of t's process.
func captureEpoll(t *kernel.Task, ep *vfs.EpollInstance) (*imgfmt.EpollObject, error) {
	// Each file's lowest fd above 2, else its lowest fd: a thaw keeps the caller's fds 0-2, so a
	// file the process also has at a higher fd is found there.
	fdOf := make(map[uintptr]int32)
	t.FDTable().ForEach(t, func(fd int32, file *vfs.FileDescription, _ kernel.FDFlags) bool {
		key := reflect.ValueOf(file).Pointer()
		if prev, ok := fdOf[key]; !ok || prev <= 2 && fd > 2 {
			fdOf[key] = fd
		}
		return true
	})
	var (
		raw     []epollRawInterest
		readErr error
	)
	if err := withInterestLock(t, ep, func() { raw, readErr = readEpollInterests(ep) }); err != nil {
		return nil, err
	}
	if readErr != nil {
		return nil, readErr
	}
	body := &imgfmt.EpollObject{}
	for _, r := range raw {
		if r.num < 0 {
			continue // The probe.
		}
		fd, ok := fdOf[r.file]
		if !ok {
			body.Dropped++
			continue
		}
		body.Interests = append(body.Interests, imgfmt.EpollInterest{FD: fd, Num: r.num, Events: r.mask, Data: r.data})
	}
	sort.Slice(body.Interests, func(i, j int) bool {
		a, b := body.Interests[i], body.Interests[j]
		return a.FD < b.FD || a.FD == b.FD && a.Num < b.Num
	})
	return body, nil
}

// epollRawInterest is one entry of an instance's interest map as read.
type epollRawInterest struct {
	file uintptr // The watched *vfs.FileDescription.
	num  int32
	mask uint32
	data uint64
}

// readEpollInterests reads ep's interest map through its stateify fields.
//
// Preconditions: ep's interest lock is held.
func readEpollInterests(ep *vfs.EpollInstance) ([]epollRawInterest, error) {
	m, err := stateField(ep, "interest")
	if err != nil {
		return nil, err
	}
	if m.Kind() != reflect.Map {
		return nil, fmt.Errorf("EpollInstance.interest is a %s, want a map (gVisor changed)", m.Kind())
	}
	var out []epollRawInterest
	for it := m.MapRange(); it.Next(); {
		file, err1 := stateSubfield(it.Key(), "file", reflect.Pointer)
		num, err2 := stateSubfield(it.Key(), "num", reflect.Int32)
		epi := it.Value()
		if epi.Kind() != reflect.Pointer || epi.IsNil() {
			return nil, fmt.Errorf("EpollInstance.interest holds a %s, want a pointer (gVisor changed)", epi.Kind())
		}
		mask, err3 := stateSubfield(epi.Elem(), "mask", reflect.Uint32)
		data, err4 := stateSubfield(epi.Elem(), "userData", reflect.Array)
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return nil, err
		}
		if data.Len() != 2 || data.Index(0).Kind() != reflect.Int32 {
			return nil, fmt.Errorf("epollInterest.userData is a %s, want [2]int32 (gVisor changed)", data.Type())
		}
		out = append(out, epollRawInterest{
			file: file.Pointer(),
			num:  int32(num.Int()),
			mask: uint32(mask.Uint()),
			data: uint64(uint32(data.Index(0).Int())) | uint64(uint32(data.Index(1).Int()))<<32,
		})
	}
	return out, nil
}

// epollInterestTypes returns zero values of the key and value types of EpollInstance.interest, for
// TestStateFieldsUsed.
func epollInterestTypes() (key, value stateifyObject) {
	f, ok := reflect.TypeOf((*vfs.EpollInstance)(nil)).Elem().FieldByName("interest")
	if !ok || f.Type.Kind() != reflect.Map || f.Type.Elem().Kind() != reflect.Pointer {
		return nil, nil
	}
	key, _ = reflect.New(f.Type.Key()).Interface().(stateifyObject)
	value, _ = reflect.New(f.Type.Elem().Elem()).Interface().(stateifyObject)
	return key, value
}

// thawEpoll makes a new epoll instance with o's interest list. fds holds the thawed file of every
// fd the interests name (inner epoll instances included: objectDeps orders them first); fds 0-2
// are the caller's.
func thawEpoll(t *kernel.Task, p *imgfmt.Process, o *imgfmt.Object, body *imgfmt.EpollObject, fds map[int32]*vfs.FileDescription) (*thawedObject, error) {
	f, err := t.Kernel().VFS().NewEpollInstanceFD(t)
	if err != nil {
		return nil, fmt.Errorf("new epoll instance: %w", err)
	}
	th := &thawedObject{files: []*vfs.FileDescription{f}}
	if err := f.SetStatusFlags(t, t.Credentials(), descStatusFlags(p, o, 0)&linux.O_NONBLOCK); err != nil {
		th.release(t)
		return nil, err
	}
	ep := f.Impl().(*vfs.EpollInstance)
	for _, in := range body.Interests {
		if err := addThawedInterest(t, ep, in, fds); err != nil {
			th.release(t)
			return nil, err
		}
	}
	return th, nil
}

// addThawedInterest adds one interest to ep, on the thawed file of its fd (fds 0-2: the caller's
// own, which stay). If epoll refuses that file (EPERM: the fd came back as another kind of file
// than the one watched, e.g. the image fd, which is the thawer's image file now, or a caller's
// fd 0-2 that is a regular file), the interest is left out: the program watched a file it no
// longer has at that fd.
func addThawedInterest(t *kernel.Task, ep *vfs.EpollInstance, in imgfmt.EpollInterest, fds map[int32]*vfs.FileDescription) error {
	target := fds[in.FD]
	if in.FD <= 2 {
		if target, _ = t.FDTable().Get(in.FD); target == nil {
			return nil
		}
		defer target.DecRef(t)
	}
	if target == nil {
		return fmt.Errorf("interest on fd %d: the fd was not thawed before the instance: %w", in.FD, linuxerr.EINVAL)
	}
	err := ep.AddInterest(target, in.Num, linux.EpollEvent{Events: in.Events, Data: epollData(in.Data)})
	if linuxerr.Equals(linuxerr.EPERM, err) {
		t.Debugf("ckpt: thaw: epoll interest on fd %d left out: the file there is not pollable any more", in.FD)
		return nil
	}
	if err != nil {
		return fmt.Errorf("watching fd %d (as %d, events %#x): %w", in.FD, in.Num, in.Events, err)
	}
	return nil
}

// epollData splits an epoll_event's 64-bit data into gVisor's two 32-bit halves (little-endian).
func epollData(d uint64) [2]int32 {
	return [2]int32{int32(uint32(d)), int32(uint32(d >> 32))}
}

// epollDeps returns the fds whose files an epoll object's interests name.
func epollDeps(body *imgfmt.EpollObject) []int32 {
	deps := make([]int32, 0, len(body.Interests))
	for _, in := range body.Interests {
		deps = append(deps, in.FD)
	}
	return deps
}
