package ckpt

import (
	"fmt"
	"strings"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/vfsfh"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/vfsfh/sentryfh"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/fsimpl/eventfd"
	"gvisor.dev/gvisor/pkg/sentry/fsimpl/pipefs"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// Files: the caller keeps fds 0–2 (the thawed program talks to whoever started checkpt), all other
// fds are closed, and the image's fds are installed at their numbers with their fd flags, status
// flags and offsets. An fd the frozen process had on the image itself gets the file the thawer
// passed to CKPT_THAW (DragonFly's CKFIF_ISCKPTFD): the image file, or for a streamed image the
// pipe or socket, never the memfd the stream was copied into (the thawed program's memory is
// mapped from it; a freeze into it would destroy that memory). Files that can be reopened by path are, with the thawer's
// credentials, and must still be the same kind of file (ESTALE otherwise; their contents may have
// changed: the process itself keeps writing its logs).
//
// Kinds that cannot be reopened (pipes, sockets, timerfds, ..., unlinked files) get a placeholder,
// predictably: the end of a fresh pipe whose other end is already closed (epoll and eventfd fds get
// fresh empty ones instead, see placeholder). A read
// returns end-of-file (what a program sees when its peer is gone), a write fails with EPIPE (and
// SIGPIPE, as for a socket whose peer closed). Write-only fds get the write end, all others the read
// end; the status flags O_NONBLOCK and FD_CLOEXEC are kept. Never does another file end up at the
// number.

// preparedFile is one fd to install at commit.
type preparedFile struct {
	fd      int32
	file    *vfs.FileDescription // A reference is held.
	cloexec bool
}

func (pf *preparedFile) release(t *kernel.Task) {
	if pf.file != nil {
		pf.file.DecRef(t)
		pf.file = nil
	}
}

// prepareFiles rebuilds the image's objects (thaw_objects.go) and reopens (or makes placeholders
// for) every other fd of the image except 0–2. image is the file the thawer passed to CKPT_THAW.
// Objects that refer to other fds (epoll) are rebuilt last, when every other fd's file exists. The
// returned objects hold the references of the objects' files; the prepared files hold their own.
// With an inherit map (tree restore) fds 0–2 are prepared too, and an fd in the map takes the
// caller's fd it names, whether or not the image has an object for it (the tree restorer made the
// shared object once for every process). With share (tree restore), objects the restorer rebuilt
// once are not rebuilt: the thaw takes its descriptions of them; and an epoll instance another
// process's thaw rebuilt is taken too (share.epoll).
func prepareFiles(t *kernel.Task, p *imgfmt.Process, image *vfs.FileDescription, inherit map[int32]int32, share *treeShare) ([]preparedFile, []*thawedObject, error) {
	var (
		out     []preparedFile
		objects = make([]*thawedObject, len(p.Objects))
	)
	fail := func(err error) ([]preparedFile, []*thawedObject, error) {
		for i := range out {
			out[i].release(t)
		}
		for _, o := range objects {
			if o != nil {
				o.release(t)
			}
		}
		return nil, nil, err
	}
	// Objects that stand alone first, then every fd that is not an object, then the rest.
	fds := make(map[int32]*vfs.FileDescription)
	for i := range p.Objects {
		o := &p.Objects[i]
		u := share.use(o.ID)
		if u == nil {
			continue
		}
		if len(u.descs) != o.Descs() {
			return fail(fmt.Errorf("object %d: the shared object has %d of its descriptions, the image %d: %w", o.ID, len(u.descs), o.Descs(), linuxerr.EINVAL))
		}
		objects[i] = u.take()
		for _, f := range o.FDs {
			fds[f.FD] = objects[i].files[f.Desc]
		}
	}
	// Objects needing files may need each other's (nested epoll instances): each pass rebuilds
	// those whose dependencies exist; a pass without progress means a cycle (EINVAL).
	thawObjects := func(needFiles bool) error {
		var pending []int
		for i := range p.Objects {
			if objects[i] == nil && objectNeedsFiles(p.Objects[i].Kind()) == needFiles {
				pending = append(pending, i)
			}
		}
		for len(pending) > 0 {
			var later []int
			for _, i := range pending {
				o := &p.Objects[i]
				if !objectDepsReady(p, o, fds) {
					later = append(later, i)
					continue
				}
				th, err := share.epoll(t, p, o, fds)
				if th == nil && err == nil {
					th, err = thawObject(t, p, o, fds)
					share.addEpoll(o, th)
				}
				if err != nil {
					return err
				}
				objects[i] = th
				for _, f := range o.FDs {
					fds[f.FD] = th.files[f.Desc]
				}
			}
			if len(later) == len(pending) {
				return fmt.Errorf("object %d: its objects refer to each other in a cycle: %w", p.Objects[later[0]].ID, linuxerr.EINVAL)
			}
			pending = later
		}
		return nil
	}
	if err := thawObjects(false); err != nil {
		return fail(err)
	}
	for i := range p.Files {
		f := &p.Files[i]
		if f.FD <= 2 && inherit == nil {
			continue
		}
		pf := preparedFile{fd: f.FD, cloexec: f.FDFlags&linux.FD_CLOEXEC != 0}
		if src, ok := inherit[f.FD]; ok {
			file, err := inheritedFile(t, src)
			if err != nil {
				return fail(fmt.Errorf("fd %d: %w", f.FD, err))
			}
			pf.file = file
			out = append(out, pf)
			fds[f.FD] = file
			continue
		}
		if o, _ := p.ObjectOf(f.FD); o != nil {
			continue // Installed below, once every object exists.
		}
		switch {
		case f.IsImage:
			image.IncRef()
			pf.file = image
		case f.Handle != nil && vfsfh.FromImage(f.Handle).Reopenable() && f.Kind != imgfmt.FileFIFO:
			file, err := reopenVerified(t, f.Handle, f.StatusFlags, false /* content */)
			if err != nil {
				return fail(fmt.Errorf("fd %d: %w", f.FD, err))
			}
			if err := checkNotReplaced(t, file, f, p.Info.FreezeTimeNano, share.rebuiltMounts()); err != nil { // thaw_identity.go
				file.DecRef(t)
				return fail(fmt.Errorf("fd %d: %w", f.FD, err))
			}
			if f.Offset >= 0 && (f.Kind == imgfmt.FileRegular || f.Kind == imgfmt.FileBlockDev) {
				if _, err := file.Seek(t, f.Offset, linux.SEEK_SET); err != nil {
					file.DecRef(t)
					return fail(fmt.Errorf("fd %d: seek to %d: %w", f.FD, f.Offset, err))
				}
			}
			pf.file = file
		default:
			file, err := placeholder(t, f)
			if err != nil {
				return fail(fmt.Errorf("fd %d (%s): placeholder: %w", f.FD, f.Desc, err))
			}
			pf.file = file
		}
		out = append(out, pf)
		fds[f.FD] = pf.file
	}
	if err := thawObjects(true); err != nil {
		return fail(err)
	}
	for i := range p.Files {
		f := &p.Files[i]
		o, desc := p.ObjectOf(f.FD)
		if o == nil || f.FD <= 2 && inherit == nil {
			continue
		}
		if _, ok := inherit[f.FD]; ok {
			continue
		}
		file := objects[o.ID-1].files[desc]
		if file == nil {
			// A description the object left unbuilt because only fds 0–2 have it (a thaw keeps
			// the caller's 0–2): a tree restore installs those fds too, so it gets a placeholder.
			var err error
			if file, err = placeholder(t, f); err != nil {
				return fail(fmt.Errorf("fd %d (%s): placeholder: %w", f.FD, f.Desc, err))
			}
		} else {
			file.IncRef()
		}
		out = append(out, preparedFile{fd: f.FD, file: file, cloexec: f.FDFlags&linux.FD_CLOEXEC != 0})
	}
	return out, objects, nil
}

// objectDepsReady reports whether every fd o depends on (objectDeps) that is itself an object
// needing files has been rebuilt already.
func objectDepsReady(p *imgfmt.Process, o *imgfmt.Object, fds map[int32]*vfs.FileDescription) bool {
	for _, fd := range objectDeps(o) {
		if d, _ := p.ObjectOf(fd); d != nil && objectNeedsFiles(d.Kind()) && fds[fd] == nil {
			return false
		}
	}
	return true
}

// placeholder returns the stand-in for an fd that cannot be reopened (see the comment above): a
// fresh, empty epoll instance for an epoll fd and a fresh eventfd (count 0) for an eventfd (their
// interest list and count are not in images of format ≤ 1.1; a runtime that waits on them, like
// Go's netpoller, keeps working), a fresh inotify instance without watches for an inotify fd, else
// one end of a new pipe whose other end is closed.
func placeholder(t *kernel.Task, f *imgfmt.File) (*vfs.FileDescription, error) {
	status := f.StatusFlags
	switch {
	case f.Desc == "anon_inode:[eventpoll]":
		return t.Kernel().VFS().NewEpollInstanceFD(t)
	case f.Kind == imgfmt.FileEventFD:
		return eventfd.New(t, t.Kernel().VFS(), 0, false, status&(linux.O_NONBLOCK|linux.O_ACCMODE))
	case strings.HasPrefix(f.Desc, "anon_inode:[inotifyfd"):
		// Watches and queued events are not in the image (docs/notes-thaw.md, "inotify").
		return vfs.NewInotifyFD(t, t.Kernel().VFS(), status&linux.O_NONBLOCK)
	}
	r, w, err := pipefs.NewConnectedPipeFDs(t, t.Kernel().PipeMount(), status&linux.O_NONBLOCK)
	if err != nil {
		return nil, err
	}
	if status&linux.O_ACCMODE == linux.O_WRONLY {
		r.DecRef(t)
		return w, nil
	}
	w.DecRef(t)
	return r, nil
}

// installFiles closes every fd above 2 (every fd, with keepNone) and installs the prepared files.
//
// Preconditions: running on t's task goroutine.
func (p *thawPlan) installFiles(t *kernel.Task) error {
	fdt := t.FDTable()
	for _, fd := range fdt.GetFDs(t) {
		if fd <= 2 && !p.keepNone {
			continue
		}
		if f := fdt.Remove(t, fd); f != nil {
			f.DecRef(t)
		}
	}
	for i := range p.files {
		pf := &p.files[i]
		old, err := fdt.NewFDAt(t, pf.fd, pf.file, kernel.FDFlags{CloseOnExec: pf.cloexec})
		if old != nil {
			old.DecRef(t)
		}
		if err != nil {
			return fmt.Errorf("fd %d: %w", pf.fd, err)
		}
	}
	return nil
}

// preparedExe is the reopened executable of the image.
type preparedExe struct {
	file *vfs.FileDescription
}

func (pe *preparedExe) release(t *kernel.Task) {
	if pe.file != nil {
		pe.file.DecRef(t)
		pe.file = nil
	}
}

// prepareExe reopens the image's executable for /proc/self/exe. It is not an error if that fails:
// the executable's code is in the image or mapped by reference (checked separately); the image
// file then stands in for it.
func prepareExe(t *kernel.Task, p *imgfmt.Process) *preparedExe {
	if p.VM.Exe == nil || !vfsfh.FromImage(p.VM.Exe).Reopenable() {
		return nil
	}
	f, err := reopenVerified(t, p.VM.Exe, linux.O_RDONLY, true /* content */)
	if err != nil {
		t.Debugf("ckpt: thaw: executable %q not reopened, the image stands in: %v", p.VM.Exe.Path, err)
		return nil
	}
	return &preparedExe{file: f}
}

// reopenVerified reopens h with t's credentials and the given open flags (never creating or
// truncating: the path may be the image itself; only reopenFlags of the image's flags count) and checks that it is still the file h describes:
// the same type, and for content also the same size and times. A changed or vanished file is an
// error matching vfsfh.ErrStale.
func reopenVerified(t *kernel.Task, h *imgfmt.FileHandle, flags uint32, content bool) (*vfs.FileDescription, error) {
	checks := vfsfh.CheckKind
	if content {
		// Times only near: the sentry that froze may have cached its own (issue 13 item 7).
		checks = vfsfh.CheckSize | vfsfh.CheckTimesNear
	}
	return sentryfh.Reopen(t, vfsfh.FromImage(h), flags&reopenFlags, checks)
}
