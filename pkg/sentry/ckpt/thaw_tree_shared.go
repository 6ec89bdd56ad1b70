package ckpt

import (
	"fmt"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/vfsfh"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// Shared files of a restored tree. An open file description that several processes shared (a log
// file a parent opened before it forked: one offset for all) is opened once by the coordinator and
// put into every process that had it, at a spare fd number, before the thaws are prepared; each
// process's thaw then takes it for the image's fd through the inherit hook (thawRequest.inherit)
// instead of reopening the file itself. Objects without a path (pipes, sockets, ...) are rebuilt
// once from the images by shareObjects (thaw_tree_objects.go).

// shareFiles opens every shared description of the tree once and installs it in each process
// that had it, recording the inherit mapping in the processes' thaw requests.
func (r *treeRestore) shareFiles(t *kernel.Task) error {
	record := func(ref treefmt.FDRef) (*imgfmt.File, error) {
		n := r.nodes[ref.PID]
		if n == nil || n.thawReq.file == nil {
			return nil, nil
		}
		p, err := r.image(t, ref.PID)
		if err != nil {
			return nil, err
		}
		for i := range p.Files {
			if p.Files[i].FD == ref.FD {
				return &p.Files[i], nil
			}
		}
		return nil, invalidf("pid %d: the manifest lists fd %d, the image does not", ref.PID, ref.FD)
	}
	install := func(file *vfs.FileDescription, refs []treefmt.FDRef) error {
		for _, ref := range refs {
			n := r.nodes[ref.PID]
			if n == nil || n.rec.Zombie != nil {
				continue
			}
			if _, done := n.thawReq.inherit[ref.FD]; done {
				continue // stdio
			}
			rep, err := r.do(n, agentCmd{op: opInstall, file: file})
			if err == nil {
				err = rep.err
			}
			if err != nil {
				return fmt.Errorf("pid %d: installing a shared file: %w", ref.PID, err)
			}
			n.thawReq.inherit[ref.FD] = rep.tid // The fd it got.
		}
		return nil
	}
	for i := range r.m.Files {
		f := &r.m.Files[i]
		switch f.Kind {
		case "regular", "directory", "chardev", "blockdev":
		default:
			continue // Objects without a path: below.
		}
		if _, ok := r.stdio[f.ID]; ok {
			continue // The container's stdio: every process inherits the restorer's.
		}
		rec, err := record(f.FDs[0])
		if err != nil {
			return err
		}
		if rec == nil || rec.Handle == nil || !vfsfh.FromImage(rec.Handle).Reopenable() {
			continue // Not reopenable: each process gets its placeholder, as for a single thaw.
		}
		if p, err := r.image(t, f.FDs[0].PID); err != nil {
			return err
		} else if o := objectOfFD(p, f.FDs[0].FD); o != nil && o.Kind() == imgfmt.ObjTerminal {
			continue // A terminal's end: its object is rebuilt once (shareObjects).
		}
		file, err := reopenVerified(t, rec.Handle, rec.StatusFlags, false)
		if err != nil {
			return fmt.Errorf("shared file %s (%s): %w", f.ID, f.Desc, err)
		}
		p, err := r.image(t, f.FDs[0].PID)
		if err == nil {
			err = checkNotReplaced(t, file, rec, p.Info.FreezeTimeNano, r.rebuilt) // thaw_identity.go
		}
		if err != nil {
			file.DecRef(t)
			return fmt.Errorf("shared file %s (%s): %w", f.ID, f.Desc, err)
		}
		if rec.Offset >= 0 && rec.Kind == imgfmt.FileRegular {
			if _, err := file.Seek(t, rec.Offset, linux.SEEK_SET); err != nil {
				file.DecRef(t)
				return fmt.Errorf("shared file %s: seek: %w", f.ID, err)
			}
		}
		err = install(file, f.FDs)
		file.DecRef(t)
		if err != nil {
			return err
		}
	}
	return nil
}

// installShared puts file at the lowest free fd above 2 of t's fd table and returns it (opInstall).
// The thaw closes it again once it has taken the file for the image's fd.
func installShared(t *kernel.Task, file *vfs.FileDescription) (int32, error) {
	fds, err := t.FDTable().NewFDs(t, 3, []*vfs.FileDescription{file}, kernel.FDFlags{})
	if err != nil {
		return 0, err
	}
	return fds[0], nil
}

// image returns the decoded image of the live process pid (decoded once per restore).
func (r *treeRestore) image(t *kernel.Task, pid int32) (*imgfmt.Process, error) {
	if p, ok := r.images[pid]; ok {
		return p, nil
	}
	n := r.nodes[pid]
	if n == nil || n.thawReq.file == nil {
		return nil, fmt.Errorf("pid %d has no image: %w", pid, errInvalidImage)
	}
	src, p, err := openImage(t, n.thawReq.file)
	if err != nil {
		return nil, fmt.Errorf("pid %d: %w", pid, err)
	}
	src.release(t)
	if r.images == nil {
		r.images = make(map[int32]*imgfmt.Process)
	}
	r.images[pid] = p
	return p, nil
}

// objectOfFD returns the object of p that fd refers to, or nil.
func objectOfFD(p *imgfmt.Process, fd int32) *imgfmt.Object {
	for i := range p.Objects {
		for _, f := range p.Objects[i].FDs {
			if f.FD == fd {
				return &p.Objects[i]
			}
		}
	}
	return nil
}
