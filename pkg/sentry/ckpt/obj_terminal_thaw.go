package ckpt

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/fspath"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/marshal"
	"gvisor.dev/gvisor/pkg/sentry/arch"
	"gvisor.dev/gvisor/pkg/sentry/fsimpl/devpts"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/memmap"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
	"gvisor.dev/gvisor/pkg/usermem"
)

// sysIoctl is ioctl(2)'s number on amd64 (only passed along to Ioctl implementations).
const sysIoctl = 16

// thawTerminal rebuilds a pty object (docs/notes-thaw.md "Terminals"):
//   - an image that predates the terminal state: a placeholder, as before;
//   - the same sandbox, the image holding no master, and the terminal still there (its master is
//     held by a process outside the image): the replica ends are opened again on that terminal,
//     whose settings are left as they are now;
//   - else a fresh pair with the image's termios, window size and packet mode, set at commit; if
//     the image held no master, the new master is closed after that (the replicas are hung up,
//     as they would be once their master went away).
//
// The controlling terminal is restored at commit when the image's was one of the rebuilt ends.
func thawTerminal(t *kernel.Task, p *imgfmt.Process, o *imgfmt.Object, b *imgfmt.TerminalObject) (*thawedObject, error) {
	if b.State == nil {
		return thawTerminalPlaceholder(t, p, o)
	}
	s := b.State
	// Descriptions only fds 0–2 have are left unbuilt (the caller keeps its own 0–2), a terminal
	// only they have is not rebuilt at all, and a terminal that was the program's stdio does not
	// take the controlling terminal from the thawer's: the program talks to the thawer's terminal.
	needed := make([]bool, o.Descs())
	anyNeeded, stdio := false, false
	for _, f := range o.FDs {
		if f.FD > 2 {
			needed[f.Desc], anyNeeded = true, true
		} else {
			stdio = true
		}
	}
	if !anyNeeded {
		return &thawedObject{files: make([]*vfs.FileDescription, o.Descs())}, nil
	}
	if stdio && s.Flags&imgfmt.TerminalControlling != 0 {
		t.Infof("ckpt: thaw: the controlling terminal /dev/pts/%d was the program's stdio: the thawer's stays", b.Index)
		st := *s
		st.Flags &^= imgfmt.TerminalControlling | imgfmt.TerminalControllingMaster | imgfmt.TerminalSessionLeader | imgfmt.TerminalForegroundOwn
		s = &st
	}
	if !slices.Contains(s.Ends, imgfmt.TerminalMaster) && s.Instance == sentryInstance() && b.Index != imgfmt.TerminalIndexUnknown {
		th, err := attachTerminal(t, p, o, b, s, needed)
		if err == nil {
			return th, nil
		}
		t.Infof("ckpt: thaw: terminal /dev/pts/%d is gone (%v): a fresh pair", b.Index, err)
	}
	return freshTerminal(t, p, o, b, s, needed)
}

// thawTerminalPlaceholder installs the placeholder for a terminal fd of an image without the
// terminal's state.
func thawTerminalPlaceholder(t *kernel.Task, p *imgfmt.Process, o *imgfmt.Object) (*thawedObject, error) {
	first := firstFile(p, o)
	if first == nil {
		return nil, fmt.Errorf("terminal without an fd: %w", errInvalidImage)
	}
	f, err := placeholder(t, first)
	if err != nil {
		return nil, fmt.Errorf("placeholder: %w", err)
	}
	t.Infof("ckpt: thaw: fd %d (%s) is a terminal without its state in the image: placeholder", first.FD, first.Desc)
	return &thawedObject{files: []*vfs.FileDescription{f}}, nil
}

// terminalOpenFlags returns the open flags of description d of a pty object: its access mode and
// O_NONBLOCK, never making it the controlling terminal (that is done explicitly at commit).
func terminalOpenFlags(p *imgfmt.Process, o *imgfmt.Object, d uint32) uint32 {
	return descStatusFlags(p, o, d)&(linux.O_ACCMODE|linux.O_NONBLOCK|linux.O_APPEND) | linux.O_NOCTTY
}

// attachTerminal opens the image's replica ends again on /dev/pts/<index> if that is still the
// same terminal: same sandbox (checked by the caller), same devpts instance, same index (devpts
// never reuses an index).
func attachTerminal(t *kernel.Task, p *imgfmt.Process, o *imgfmt.Object, b *imgfmt.TerminalObject, s *imgfmt.TerminalState, needed []bool) (*thawedObject, error) {
	root := t.FSContext().RootDirectory()
	if !root.Ok() {
		return nil, fmt.Errorf("no root directory")
	}
	defer root.DecRef(t)
	th := &thawedObject{files: make([]*vfs.FileDescription, len(s.Ends))}
	var ctty *vfs.FileDescription
	for d := range s.Ends {
		if !needed[d] {
			continue
		}
		pop := vfs.PathOperation{Root: root, Start: root, Path: fspath.Parse("/dev/pts/" + strconv.FormatUint(uint64(b.Index), 10)), FollowFinalSymlink: true}
		f, err := t.Kernel().VFS().OpenAt(t, t.Credentials(), &pop, &vfs.OpenOptions{Flags: terminalOpenFlags(p, o, uint32(d))})
		if err == nil {
			err = sameTerminal(t, f, b)
			if err != nil {
				f.DecRef(t)
			}
		}
		if err != nil {
			th.release(t)
			return nil, err
		}
		th.files[d] = f
		ctty = f
	}
	if s.Flags&imgfmt.TerminalControlling != 0 && s.Flags&imgfmt.TerminalControllingMaster == 0 {
		th.commit = func(t *kernel.Task) error {
			restoreControllingTTY(t, ctty, s)
			return nil
		}
	}
	t.Infof("ckpt: thaw: terminal /dev/pts/%d is still there: its replica ends attached again", b.Index)
	return th, nil
}

// sameTerminal checks that f is a replica of the terminal b recorded: devpts instance and index.
func sameTerminal(t *kernel.Task, f *vfs.FileDescription, b *imgfmt.TerminalObject) error {
	term, end, ok, err := terminalOf(f)
	if err != nil || !ok || end != imgfmt.TerminalReplica {
		return fmt.Errorf("not a pty replica (%v)", err)
	}
	n, err := stateFieldOf(term, new(devpts.Terminal), "n")
	if err != nil {
		return err
	}
	stat, err := f.Stat(t, vfs.StatOptions{Mask: linux.STATX_INO})
	if err != nil {
		return err
	}
	if uint32(n.Uint()) != b.Index || stat.DevMinor != b.State.DevMinor {
		return fmt.Errorf("another terminal (index %d, devpts minor %d)", n.Uint(), stat.DevMinor)
	}
	return nil
}

// freshTerminal opens a new pty pair for the object: the master from /dev/ptmx, each replica end
// as <devpts>/<new index> (so /dev/tty ends become /dev/pts/N ends), and sets the image's state
// at commit.
func freshTerminal(t *kernel.Task, p *imgfmt.Process, o *imgfmt.Object, b *imgfmt.TerminalObject, s *imgfmt.TerminalState, needed []bool) (*thawedObject, error) {
	root := t.FSContext().RootDirectory()
	if !root.Ok() {
		return nil, fmt.Errorf("no root directory")
	}
	defer root.DecRef(t)
	masterFlags := uint32(linux.O_RDWR | linux.O_NOCTTY)
	if d := slices.Index(s.Ends, imgfmt.TerminalMaster); d >= 0 {
		masterFlags = terminalOpenFlags(p, o, uint32(d))
	}
	pop := vfs.PathOperation{Root: root, Start: root, Path: fspath.Parse("/dev/ptmx"), FollowFinalSymlink: true}
	master, err := t.Kernel().VFS().OpenAt(t, t.Credentials(), &pop, &vfs.OpenOptions{Flags: masterFlags})
	if err != nil {
		return nil, fmt.Errorf("opening /dev/ptmx: %w", err)
	}
	term, end, ok, err := terminalOf(master)
	if err != nil || !ok || end != imgfmt.TerminalMaster {
		master.DecRef(t)
		return nil, fmt.Errorf("/dev/ptmx did not give a pty master (%v)", err)
	}
	n, err := stateFieldOf(term, new(devpts.Terminal), "n")
	if err != nil {
		master.DecRef(t)
		return nil, err
	}
	index := strconv.FormatUint(n.Uint(), 10)
	mnt := master.Mount()
	mroot := vfs.MakeVirtualDentry(mnt, mnt.Root())
	openReplica := func(flags uint32) (*vfs.FileDescription, error) {
		pop := vfs.PathOperation{Root: mroot, Start: mroot, Path: fspath.Parse(index)}
		return t.Kernel().VFS().OpenAt(t, t.Credentials(), &pop, &vfs.OpenOptions{Flags: flags})
	}
	// ctl is the thaw's own reference on the master, for the settings at commit; ctty the end
	// to make the controlling terminal through.
	th := &thawedObject{files: make([]*vfs.FileDescription, len(s.Ends))}
	ctl := master
	var ctty *vfs.FileDescription
	// refill is the thaw's own replica to write the output queue through (closed after commit).
	var refill *vfs.FileDescription
	if q := s.Queues; q != nil && len(q.Output.Read)+len(q.Output.Wait) > 0 {
		if refill, err = openReplica(linux.O_WRONLY | linux.O_NOCTTY | linux.O_NONBLOCK); err != nil {
			ctl.DecRef(t)
			return nil, fmt.Errorf("opening the new pair's replica %s: %w", index, err)
		}
	}
	for d, e := range s.Ends {
		if !needed[d] {
			continue
		}
		var f *vfs.FileDescription
		if e == imgfmt.TerminalMaster {
			master.IncRef()
			f = master
		} else if f, err = openReplica(terminalOpenFlags(p, o, uint32(d))); err != nil {
			th.release(t)
			ctl.DecRef(t)
			if refill != nil {
				refill.DecRef(t)
			}
			return nil, fmt.Errorf("opening the new pair's replica %s: %w", index, err)
		}
		th.files[d] = f
		if (e == imgfmt.TerminalMaster) == (s.Flags&imgfmt.TerminalControllingMaster != 0) {
			ctty = f
		}
	}
	hasMaster := false
	for d, e := range s.Ends {
		hasMaster = hasMaster || e == imgfmt.TerminalMaster && needed[d]
	}
	if !hasMaster || s.Flags&imgfmt.TerminalControlling == 0 {
		ctty = nil // A terminal that is hung up at commit is not made the controlling one.
	}
	th.drop = func(t *kernel.Task) {
		if ctl != nil {
			ctl.DecRef(t)
			ctl = nil
		}
		if refill != nil {
			refill.DecRef(t)
			refill = nil
		}
	}
	th.commit = func(t *kernel.Task) error {
		applyTerminalState(t, ctl, refill, s)
		if refill != nil {
			refill.DecRef(t)
			refill = nil
		}
		if ctty != nil {
			restoreControllingTTY(t, ctty, s)
		}
		ctl.DecRef(t) // Closes the master if no thawed fd has it.
		ctl = nil
		return nil
	}
	t.Infof("ckpt: thaw: terminal /dev/pts/%d of the image: a new pair /dev/pts/%s", b.Index, index)
	return th, nil
}

// applyTerminalState sets termios, window size and packet mode of the terminal of master through
// its ioctls, from a scratch page of t's (the thawed process's) memory, and refills its queues
// (replica: an end to write the output queue through, see terminalRefill). Failures are logged:
// the commit must go on.
func applyTerminalState(t *kernel.Task, master, replica *vfs.FileDescription, s *imgfmt.TerminalState) {
	kt := kernelTermios(s.Termios)
	ws := linux.Winsize{Row: s.Winsize.Row, Col: s.Winsize.Col, Xpixel: s.Winsize.XPixel, Ypixel: s.Winsize.YPixel}
	packet := make([]byte, 4)
	if s.Flags&imgfmt.TerminalPacket != 0 {
		packet[0] = 1
	}
	calls := []ioctlCall{{name: "TCSETS2", cmd: linux.TCSETS2, arg: marshalled(&kt)}}
	if s.Queues != nil && !s.Queues.Empty() {
		calls = terminalRefill(master, replica, s)
	}
	calls = append(calls,
		ioctlCall{name: "TIOCSWINSZ", cmd: linux.TIOCSWINSZ, arg: marshalled(&ws)},
		ioctlCall{name: "TIOCPKT", cmd: linux.TIOCPKT, arg: packet})
	if err := ioctlsWithArgs(t, master, calls); err != nil {
		t.Warningf("ckpt: thaw: terminal settings: %v (lost)", err)
	}
}

// marshalled returns v's bytes.
func marshalled(v marshal.Marshallable) []byte {
	b := make([]byte, v.SizeBytes())
	v.MarshalBytes(b)
	return b
}

// ioctlCall is one ioctl with an argument in memory, or (run set) another step to take in order
// with the ioctls.
type ioctlCall struct {
	name string
	cmd  uint32
	arg  []byte // At most a page.
	run  func(t *kernel.Task) error
}

// ioctlsWithArgs calls each ioctl on f in order with its argument copied into a scratch page of
// t's memory (the only way into devpts's setters: they copy their argument from the calling task),
// mapped once and unmapped at the end. A failing ioctl is logged and the next one still runs.
//
// Preconditions: running on t's task goroutine, at commit (t is the thawed process, one thread).
func ioctlsWithArgs(t *kernel.Task, f *vfs.FileDescription, calls []ioctlCall) error {
	m := t.MemoryManager()
	addr, err := m.MMap(t, memmap.MMapOpts{
		Length:   hostarch.PageSize,
		Private:  true,
		Perms:    hostarch.ReadWrite,
		MaxPerms: hostarch.AnyAccess,
	})
	if err != nil {
		return fmt.Errorf("scratch page: %w", err)
	}
	defer m.MUnmap(t, addr, hostarch.PageSize)
	for _, c := range calls {
		if c.run != nil {
			if err := c.run(t); err != nil {
				t.Warningf("ckpt: thaw: terminal %s: %v", c.name, err)
			}
			continue
		}
		if len(c.arg) > hostarch.PageSize {
			return fmt.Errorf("%s: argument of %d bytes", c.name, len(c.arg))
		}
		if _, err := m.CopyOut(t, addr, c.arg, usermem.IOOpts{}); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
		var args arch.SyscallArguments
		args[1].Value = uintptr(c.cmd)
		args[2].Value = uintptr(addr)
		if _, err := f.Ioctl(t, m, sysIoctl, args); err != nil {
			t.Warningf("ckpt: thaw: terminal %s: %v (the setting is lost)", c.name, err)
		}
	}
	return nil
}

// restoreControllingTTY makes the terminal of f the controlling terminal of t's process, as the
// image's was: if the frozen process led its session and t's does not, t's process first starts a
// new session (setsid: fails if it leads a process group). The foreground group becomes t's own
// group (TIOCSCTTY sets it so), which is what the image had when TerminalForegroundOwn is set;
// else the recorded foreground group is set as TIOCSPGRP would, if a group of that id exists in
// the session (a container restore keeps pgids; a single thaw's session has only its own group, so
// its own group stays). Failures are logged: the commit must go on.
func restoreControllingTTY(t *kernel.Task, f *vfs.FileDescription, s *imgfmt.TerminalState) {
	tg := t.ThreadGroup()
	pidns := tg.PIDNamespace()
	leader := int32(pidns.IDOfSession(tg.Session())) == int32(pidns.IDOfThreadGroup(tg))
	if !leader && s.Flags&imgfmt.TerminalSessionLeader != 0 {
		if _, err := tg.CreateSession(t); err != nil {
			t.Warningf("ckpt: thaw: the frozen process led its session, setsid: %v: its controlling terminal is not restored", err)
			return
		}
	}
	var args arch.SyscallArguments
	args[1].Value = uintptr(linux.TIOCSCTTY)
	if _, err := f.Ioctl(t, t.MemoryManager(), sysIoctl, args); err != nil {
		t.Warningf("ckpt: thaw: TIOCSCTTY: %v: the controlling terminal is not restored", err)
		return
	}
	if tty := tg.TTY(); tty != nil && s.Flags&imgfmt.TerminalForegroundOwn == 0 && s.FgPGID > 0 {
		if err := tg.SetForegroundProcessGroupID(t, tty, kernel.ProcessGroupID(s.FgPGID)); err != nil {
			t.Infof("ckpt: thaw: the terminal's foreground group was another process group (%d): %v: the thawed process's own group is the foreground one", s.FgPGID, err)
		} else {
			t.Infof("ckpt: thaw: the terminal's foreground process group is %d again", s.FgPGID)
		}
	}
}
