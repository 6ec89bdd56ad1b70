package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// A container started with a terminal ("terminal": true in config.json, the runtime given
// --console-socket SOCK, as `docker run -t`, `podman run -t` and `ctr run -t` do) has a pty the
// runtime made as its stdio; the runtime sent the master over SOCK. gVisor imports the replica as
// one host TTY file (restore key host:0) that the container's fds 0-2 share, so the freeze marks
// every fd on it as the container's stdio 0 (freeze_tree_stdio.go). An engine restores such a
// container with `restore --console-socket SOCK` and waits for a new master on SOCK; the restored
// processes' fds that were the old terminal must be the new one.
//
// Both routes of an ELF restore pass --console-socket on: the plain one (--restore-clock=reset)
// to `run`, which makes the pty, sends the master and starts the restore init on the replica; the
// template route (tree_restore_clock.go) to upstream's restore, which does the same for the
// restored sandbox and maps the template's host TTY (saved under host:0) to the new replica. The
// template itself runs detached, where no engine waits on a socket: it gets a pty of its own
// (templateTerminal) instead of /dev/null. That matters for what the restore brings back: gVisor
// saves with a host file whether the host could poll it (epoll), and restores it on the new fd
// as saved. /dev/null cannot be polled, so the restored terminal was not polled either: a
// restored shell's `read -t 1` on it never returned, and its loop stopped (TestTreeTerminalOCI
// with a /dev/null template). The template's pty can be, as the new one can.

// templateTerminal opens a pty pair for the template sandbox of a clock-continuing restore of a
// terminal container: `run` without --console-socket imports its stdin as the container's
// terminal. The caller closes both ends once the template is gone.
func templateTerminal() (master, replica *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("opening a terminal for the template sandbox: %w", err)
	}
	fd := int(master.Fd())
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err == nil {
		err = unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0)
	}
	if err == nil {
		replica, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("opening a terminal for the template sandbox: %w", err)
	}
	return master, replica, nil
}
