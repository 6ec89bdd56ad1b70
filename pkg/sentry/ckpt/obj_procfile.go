package ckpt

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/vfsfh/sentryfh"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/fspath"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// Fds that name processes (issue 8 item 8): files under /proc/<pid>/ and pidfds. Reopening such an
// fd by its path would name whichever process has that pid at the thaw (another process's file:
// an information leak), or fail the thaw when the pid is gone. So the image records them relative
// to the process: /proc/<own pid>/rest becomes "own process, rest", /proc/<own pid>/task/<tid>/rest
// "own thread tid, rest", and a thaw opens <mount>/self/rest or <mount>/thread-self/rest against
// the thawed process. A file of another process gets a placeholder (never reopened), as does a
// file of a thread other than the freezing one (its new task does not exist before the commit
// ends). A pidfd of the own process is made afresh for the thawed process; one of another process
// (or a PIDFD_THREAD pidfd) gets a placeholder.
//
// The files are opened at commit, not in the prepare phase: until the thaw's exec, the caller may
// not be its process's leader, and a /proc/<pid> inode (and a pidfd) is bound to the task that was
// the leader when it was looked up, which the exec ends. The prepare phase checks that the path
// can be opened at all (else the fd keeps its placeholder, logged) and installs a placeholder that
// the commit replaces; a commit that still fails to open it (it must not fail the thaw) leaves the
// placeholder, logged. Placeholders are those of thaw_files.go (a pipe end whose peer is gone).

// procFSName and nsFSName are the names of gVisor's proc and nsfs filesystem types.
const (
	procFSName   = "proc"
	nsFSName     = "nsfs"
	devptsFSName = "devpts"
)

// pidFDStateType is the stateify type name of gVisor's pidfd implementation (kernel.pidFD, not
// exported), which is how a pidfd is recognised (docs/upstream-gaps.md).
const pidFDStateType = "pkg/sentry/kernel.pidFD"

// captureNamingObject returns the object behind file if it names a process or a namespace: a file
// of the proc filesystem under /<pid>/, an nsfs file, or a pidfd. Each open file description is an
// object of its own.
//
// Preconditions: running on t's task goroutine, t's process stopped.
func captureNamingObject(t *kernel.Task, file *vfs.FileDescription) (objectIdentity, imgfmt.ObjectBody, bool, error) {
	if id, body, ok, err := captureTerminal(t, file); ok || err != nil {
		return id, body, ok, err
	}
	switch file.Mount().Filesystem().FilesystemType().Name() {
	case procFSName:
		body, ok, err := captureProcFile(t, file)
		return file, body, ok, err
	case nsFSName:
		body, ok, err := captureNamespace(t, file)
		return file, body, ok, err
	}
	if s, ok := file.Impl().(stateifyObject); ok && s.StateTypeName() == pidFDStateType {
		return file, capturePIDFD(t, file), true, nil
	}
	return nil, nil, false, nil
}

// captureProcFile records a proc file under /<pid>/; other proc files (/proc/meminfo,
// /proc/sys/...) are left to the path reopen (ok false).
func captureProcFile(t *kernel.Task, file *vfs.FileDescription) (*imgfmt.ProcFileObject, bool, error) {
	mnt := file.Mount()
	rel, err := t.Kernel().VFS().PathnameWithDeleted(t, vfs.MakeVirtualDentry(mnt, mnt.Root()), file.VirtualDentry())
	if err != nil {
		return nil, false, fmt.Errorf("proc file path: %w", err)
	}
	first, rest, _ := strings.Cut(strings.TrimPrefix(rel, "/"), "/")
	n, err := strconv.ParseUint(first, 10, 31)
	if err != nil || n == 0 {
		return nil, false, nil
	}
	o := &imgfmt.ProcFileObject{What: imgfmt.ProcPath, Target: imgfmt.ProcOther, Rest: rest, Mount: "/proc"}
	// The mount point as the process sees it: the fd's full path without rel.
	if full, err := sentryfh.Pathname(t, file); err == nil && strings.HasSuffix(full, rel) && strings.HasPrefix(full, "/") {
		if m := strings.TrimSuffix(full, rel); m != "" {
			o.Mount = m
		} else {
			o.Mount = "/"
		}
	}
	if st, err := file.Stat(t, vfs.StatOptions{Mask: linux.STATX_TYPE}); err == nil && st.Mode&linux.S_IFMT == linux.S_IFLNK {
		o.NoFollow = true
	}
	tg := t.ThreadGroup()
	ns := tg.PIDNamespace()
	task := ns.TaskWithID(kernel.ThreadID(n))
	if task == nil || task.ThreadGroup() != tg {
		return o, true, nil // Another process, or one gone already: a placeholder at the thaw.
	}
	o.Target = imgfmt.ProcOwnProcess
	if task != tg.Leader() {
		o.Target, o.TID = imgfmt.ProcOwnThread, int32(n)
	}
	if sub, ok := strings.CutPrefix(rest, "task/"); ok {
		tidStr, below, _ := strings.Cut(sub, "/")
		if tid, err := strconv.ParseUint(tidStr, 10, 31); err == nil {
			if tt := ns.TaskWithID(kernel.ThreadID(tid)); tt != nil && tt.ThreadGroup() == tg {
				o.Target, o.TID, o.Rest = imgfmt.ProcOwnThread, int32(tid), below
			} else {
				o.Target = imgfmt.ProcOther // A thread gone already.
			}
		}
	}
	return o, true, nil
}

// capturePIDFD records a pidfd: of the own process, or of another. ThreadGroupFromPIDFD (which
// takes an fd number of t's table) names the process; it refuses PIDFD_THREAD pidfds (EINVAL) and
// pidfds of processes gone (ESRCH): those are recorded as another process's.
func capturePIDFD(t *kernel.Task, file *vfs.FileDescription) *imgfmt.ProcFileObject {
	o := &imgfmt.ProcFileObject{What: imgfmt.ProcPIDFD, Target: imgfmt.ProcOther}
	fdt := t.FDTable()
	for _, fd := range fdt.GetFDs(t) {
		f, _ := fdt.Get(fd)
		if f == nil {
			continue
		}
		same := f == file
		f.DecRef(t)
		if !same {
			continue
		}
		if tg, _, err := t.ThreadGroupFromPIDFD(fd); err == nil && tg == t.ThreadGroup() {
			o.Target = imgfmt.ProcOwnProcess
		}
		break
	}
	return o
}

// thawProcFile prepares a proc-file object: a placeholder now and, for a file the thawed process can
// have, a commit that opens it and puts it at the object's fds.
func thawProcFile(t *kernel.Task, p *imgfmt.Process, o *imgfmt.Object, b *imgfmt.ProcFileObject) (*thawedObject, error) {
	first := firstFile(p, o)
	if first == nil {
		return nil, fmt.Errorf("proc file without an fd: %w", errInvalidImage)
	}
	ph, err := placeholder(t, first)
	if err != nil {
		return nil, fmt.Errorf("placeholder: %w", err)
	}
	th := &thawedObject{files: []*vfs.FileDescription{ph}}
	var open func(t *kernel.Task) (*vfs.FileDescription, error)
	switch {
	case b.Target == imgfmt.ProcOther:
		return th, nil
	case b.What == imgfmt.ProcPIDFD:
		nonBlock := first.StatusFlags&linux.O_NONBLOCK != 0
		open = func(t *kernel.Task) (*vfs.FileDescription, error) {
			return t.PIDFDOpen(t.ThreadGroup().ID(), false, nonBlock)
		}
	case b.Target == imgfmt.ProcOwnThread && (len(p.Threads) == 0 || b.TID != p.Threads[0].TID):
		t.Infof("ckpt: thaw: fd %d (%s) names a thread that does not exist until the thaw ends: placeholder", first.FD, first.Desc)
		return th, nil
	default:
		who := "self"
		if b.Target == imgfmt.ProcOwnThread {
			who = "thread-self"
		}
		path := strings.TrimSuffix(b.Mount, "/") + "/" + who
		if b.Rest != "" {
			path += "/" + b.Rest
		}
		open = func(t *kernel.Task) (*vfs.FileDescription, error) {
			return openProcFile(t, path, first, b.NoFollow)
		}
		// Check now that it opens at all (proc mounted, the entry exists, permission).
		f, err := open(t)
		if err != nil {
			t.Infof("ckpt: thaw: fd %d: %s cannot be opened (%v): placeholder", first.FD, path, err)
			return th, nil
		}
		f.DecRef(t)
	}
	th.commit = func(t *kernel.Task) error {
		f, err := open(t)
		if err != nil {
			t.Warningf("ckpt: thaw: fd %d (%s): reopening for the thawed process failed, placeholder kept: %v", first.FD, first.Desc, err)
			return nil
		}
		defer f.DecRef(t)
		return installAtObjectFDs(t, p, o, f)
	}
	return th, nil
}

// openProcFile opens path (a file of the proc filesystem) for the thawed process with the status
// flags and offset of f.
func openProcFile(t *kernel.Task, path string, f *imgfmt.File, noFollow bool) (*vfs.FileDescription, error) {
	root := t.FSContext().RootDirectory()
	if !root.Ok() {
		return nil, fmt.Errorf("no root directory")
	}
	defer root.DecRef(t)
	flags := f.StatusFlags&(linux.O_ACCMODE|linux.O_NONBLOCK|linux.O_APPEND|linux.O_PATH|linux.O_NOATIME) | linux.O_LARGEFILE
	if noFollow {
		flags |= linux.O_PATH | linux.O_NOFOLLOW
	}
	pop := vfs.PathOperation{Root: root, Start: root, Path: fspath.Parse(path), FollowFinalSymlink: !noFollow}
	file, err := t.Kernel().VFS().OpenAt(t, t.Credentials(), &pop, &vfs.OpenOptions{Flags: flags})
	if err != nil {
		return nil, err
	}
	if name := file.Mount().Filesystem().FilesystemType().Name(); name != procFSName {
		file.DecRef(t)
		return nil, fmt.Errorf("%s is on %s, not on a proc filesystem", path, name)
	}
	if f.Offset > 0 && (f.Kind == imgfmt.FileRegular || f.Kind == imgfmt.FileDirectory) {
		if _, err := file.Seek(t, f.Offset, linux.SEEK_SET); err != nil {
			t.Debugf("ckpt: thaw: fd %d: seek to %d: %v (offset 0 kept)", f.FD, f.Offset, err)
		}
	}
	return file, nil
}

// installAtObjectFDs puts file at every fd of o, replacing what the install put there, with each
// fd's own close-on-exec flag.
//
// Preconditions: running on t's task goroutine, at commit, after installFiles.
func installAtObjectFDs(t *kernel.Task, p *imgfmt.Process, o *imgfmt.Object, file *vfs.FileDescription) error {
	for _, fd := range o.FDs {
		i := fileIndexOf(p, fd.FD)
		if fd.FD <= 2 || i < 0 {
			continue // The caller keeps its fds 0-2.
		}
		old, err := t.FDTable().NewFDAt(t, fd.FD, file, kernel.FDFlags{CloseOnExec: p.Files[i].FDFlags&linux.FD_CLOEXEC != 0})
		if old != nil {
			old.DecRef(t)
		}
		if err != nil {
			return fmt.Errorf("fd %d: %w", fd.FD, err)
		}
	}
	return nil
}

// firstFile returns the fd record of o's first fd above 2 (those the thaw installs), or of its
// first fd, or nil.
func firstFile(p *imgfmt.Process, o *imgfmt.Object) *imgfmt.File {
	var first *imgfmt.File
	for _, fd := range o.FDs {
		if i := fileIndexOf(p, fd.FD); i >= 0 {
			if fd.FD > 2 {
				return &p.Files[i]
			}
			if first == nil {
				first = &p.Files[i]
			}
		}
	}
	return first
}
