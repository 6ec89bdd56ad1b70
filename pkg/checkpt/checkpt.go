// Package checkpt is the guest tool checkpt, DragonFly's checkpt(1) for runsc-ckpt sandboxes. It
// imports nothing but the standard library, ckptabi and treefmt: it runs inside a sandbox, before any of
// gVisor's package initialisers (see package early), so it must not depend on them.
package checkpt

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/ckptabi"
)

// checkpt is the guest tool, DragonFly's checkpt(1) for runsc-ckpt sandboxes. It is this same
// static binary, run inside a sandbox either under the name "checkpt" (a symlink or a bind mount)
// or as `runsc-ckpt checkpt ...`:
//
//	checkpt -r IMAGE          thaw IMAGE in place of this process (IMAGE "-" reads stdin, which
//	                          may be a pipe or a socket); the thawed program's sys_checkpoint
//	                          returns 1
//	checkpt -c PID [-o FILE] [--parent OLD]
//	                          freeze process PID into FILE (default PID.ckpt); with --parent,
//	                          an incremental image that stores only what differs from the image
//	                          OLD (docs/incremental.md)
//	checkpt -c -t PID -o DIR  freeze PID and its descendants (0: every process) into DIR, a tree
//	                          checkpoint (checkpt_tree.go)
//
// It never returns from a successful thaw: the process becomes the thawed program. On failure it
// prints why and exits with status 5 (checkptFailed), like DragonFly's checkpt.

// Exit statuses of checkpt.
const (
	checkptFailed = 5 // The thaw or freeze failed; the message says why.
	checkptUsage  = 2 // Bad command line.
)

// Guest ABI of sys_checkpoint (package ckptabi).
const (
	sysCheckpoint  = ckptabi.SYS_checkpoint
	ckptFreeze     = ckptabi.CKPT_FREEZE
	ckptThaw       = ckptabi.CKPT_THAW
	ckptFreezeIncr = ckptabi.CKPT_FREEZE_INCR
	thawRetval     = 1 // What the thawed program's sys_checkpoint returns, as DragonFly's checkpt.
	checkptUsageTx = "usage: checkpt -r IMAGE|-\n       checkpt -c PID [-o FILE] [--parent OLD]\n"
)

// checkptDispatch runs checkpt if args (os.Args) ask for it: argv[0]'s base name is "checkpt", or
// the first argument is the subcommand "checkpt". It returns the exit status and true if it ran.
// Both forms bypass runsc's CLI setup, which has no business inside a sandbox.
func checkptDispatch(args []string) (int, bool) {
	if len(args) > 0 && filepath.Base(args[0]) == "checkpt" {
		return checkptMain(args[1:], os.Stdin, os.Stderr), true
	}
	if len(args) > 1 && args[1] == "checkpt" {
		return checkptMain(args[2:], os.Stdin, os.Stderr), true
	}
	return 0, false
}

// checkptMain parses checkpt's arguments and runs it.
func checkptMain(args []string, stdin *os.File, stderr io.Writer) int {
	if isTreeArgs(args) { // Tree mode: checkpt_tree.go.
		return checkptTreeMain(args, stdin, os.Stdout, stderr)
	}
	var thaw, freezePID, out, parent string
	for i := 0; i < len(args); i++ {
		a := args[i]
		var val *string
		switch a {
		case "-r":
			val = &thaw
		case "-c":
			val = &freezePID
		case "-o":
			val = &out
		case "--parent", "-parent", "-p":
			val = &parent
		case "-h", "-help", "--help":
			fmt.Fprint(stderr, checkptUsageTx)
			return 0
		default:
			return usageError(stderr, checkptUsageTx, "unknown argument %q", a)
		}
		if i+1 >= len(args) {
			return usageError(stderr, checkptUsageTx, "%s needs an argument", a)
		}
		i++
		*val = args[i]
	}
	switch {
	case thaw != "" && freezePID == "" && out == "" && parent == "":
		err := checkptThaw(thaw, stdin)
		fmt.Fprintf(stderr, "checkpt: thaw of %s failed: %v\n", thaw, err)
		return checkptFailed
	case freezePID != "" && thaw == "":
		if err := checkptFreeze(freezePID, out, parent); err != nil {
			fmt.Fprintf(stderr, "checkpt: freeze of process %s failed: %v\n", freezePID, err)
			return checkptFailed
		}
		return 0
	case thaw != "" && freezePID != "":
		return usageError(stderr, checkptUsageTx, "-r (thaw) and -c (freeze) do not go together")
	case thaw != "":
		return usageError(stderr, checkptUsageTx, "-o and --parent go with -c, not with -r")
	default:
		return usageError(stderr, checkptUsageTx, "nothing to do: give -r IMAGE or -c PID")
	}
}

// usageError writes "checkpt: <reason>" and the usage text to stderr and returns checkptUsage.
func usageError(stderr io.Writer, usage, format string, args ...any) int {
	fmt.Fprintf(stderr, "checkpt: "+format+"\n", args...)
	fmt.Fprint(stderr, usage)
	return checkptUsage
}

// checkptThaw thaws image in place of this process. It only returns on failure.
func checkptThaw(image string, stdin *os.File) error {
	f := stdin
	if image != "-" {
		var err error
		if f, err = os.Open(image); err != nil {
			return err
		}
		defer f.Close()
	}
	_, _, errno := syscall.Syscall6(sysCheckpoint, ckptThaw, f.Fd(), uintptr(^uint32(0)), thawRetval, 0, 0)
	return describeErrno(errno)
}

// checkptFreeze freezes process pid into out (default "PID.ckpt"), incremental against the image
// parent if that is not empty. An existing regular file out is unlinked first, never truncated: a
// thawed process may still map its pages from it (DragonFly does the same); anything else that
// exists (a pipe, a device, a symlink such as /dev/stdout) is opened and written where it is.
func checkptFreeze(pid, out, parent string) error {
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 0 {
		return fmt.Errorf("%q is not a process id", pid)
	}
	if out == "" {
		out = pid + ".ckpt"
	}
	typ, parentFD := uintptr(ckptFreeze), uintptr(0)
	if parent != "" {
		pf, err := os.Open(parent)
		if err != nil {
			return fmt.Errorf("parent image: %w", err)
		}
		defer pf.Close()
		typ, parentFD = ckptFreezeIncr, pf.Fd()
	}
	// Anything but a regular file (a pipe, a socket, a device, a symlink such as /dev/stdout) is
	// opened and written where it is: unlinking /dev/stdout would replace the link.
	if st, err := os.Lstat(out); err == nil && !st.Mode().IsRegular() && !st.IsDir() {
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			return err
		}
		_, _, errno := syscall.Syscall6(sysCheckpoint, typ, f.Fd(), uintptr(uint32(n)), parentFD, 0, 0)
		cerr := f.Close()
		if errno != 0 {
			return describeErrno(errno)
		}
		return cerr
	}
	if err := os.Remove(out); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, _, errno := syscall.Syscall6(sysCheckpoint, typ, f.Fd(), uintptr(uint32(n)), parentFD, 0, 0)
	cerr := f.Close()
	if errno != 0 {
		os.Remove(out)
		return describeErrno(errno)
	}
	return cerr
}

// describeErrno explains sys_checkpoint's errors in the words of docs/abi.md.
func describeErrno(e syscall.Errno) error {
	why := map[syscall.Errno]string{
		syscall.ENOSYS:     "not running under runsc-ckpt (no sys_checkpoint)",
		syscall.EINVAL:     "malformed image, or an image this sandbox cannot thaw (other platform range or vDSO)",
		syscall.ESTALE:     "a file the image refers to has changed or vanished",
		syscall.EPERM:      "not allowed by the sandbox's checkpoint policy, or a set-id process",
		syscall.EBADF:      "the image is not open for reading/writing",
		syscall.ERANGE:     "RLIMIT_CORE is 0",
		syscall.ESRCH:      "no such process",
		syscall.ENOSPC:     "out of space",
		syscall.EOPNOTSUPP: "operation not supported",
		syscall.EAGAIN:     "too many images are being written in the background (--ckpt-background); try again",
	}
	if w, ok := why[e]; ok {
		return fmt.Errorf("%v (%s)", e, w)
	}
	return e
}
