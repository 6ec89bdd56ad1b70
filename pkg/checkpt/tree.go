package checkpt

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/ckptabi"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
)

// Tree mode of the guest tool:
//
//	checkpt -c -t PID -o DIR [-k] [--digest crc32c|sha256]
//	                                freeze PID and all its descendants (PID 0: every process of
//	                                the sandbox but checkpt) into the new directory DIR ("-" writes
//	                                the tree stream to stdout); -k kills the tree afterwards;
//	                                --digest: the manifest's digests (default crc32c)
//	checkpt -r -t DIR               restore the tree in DIR (see checkptThawTree)

// Tree types and flags of sys_checkpoint (package ckptabi).
const (
	ckptFreezeTree = ckptabi.CKPT_FREEZE_TREE
	ckptThawTree   = ckptabi.CKPT_THAW_TREE
	ckptTreeKill   = ckptabi.CKPT_TREE_KILL
	ckptTreeSelf   = ckptabi.CKPT_TREE_SELF
	ckptTreeSHA256 = ckptabi.CKPT_TREE_SHA256
)

const checkptTreeUsageTx = "       checkpt -c -t PID -o DIR|- [-k] [--digest crc32c|sha256]\n       checkpt -r -t DIR\n"

// isTreeArgs reports whether args select tree mode (a -t option).
func isTreeArgs(args []string) bool {
	for _, a := range args {
		if a == "-t" {
			return true
		}
	}
	return false
}

// checkptTreeMain runs tree mode.
func checkptTreeMain(args []string, stdin *os.File, stdout, stderr io.Writer) int {
	var (
		freeze, thaw, kill  bool
		target, out, digest string
	)
	usage := checkptUsageTx + checkptTreeUsageTx
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-c":
			freeze = true
		case "-r":
			thaw = true
		case "-k":
			kill = true
		case "-t", "-o", "--digest", "-digest":
			if i+1 >= len(args) {
				return usageError(stderr, usage, "%s needs an argument", args[i])
			}
			switch args[i] {
			case "-t":
				target = args[i+1]
			case "-o":
				out = args[i+1]
			default:
				digest = args[i+1]
			}
			i++
		default:
			return usageError(stderr, usage, "unknown argument %q", args[i])
		}
	}
	switch {
	case freeze && !thaw && out != "":
		pid, err := strconv.Atoi(target)
		if err != nil || pid < 0 {
			return usageError(stderr, usage, "%q is not a process id (0: every process)", target)
		}
		alg := treefmt.DefaultDigest
		if digest != "" {
			if alg, err = treefmt.ParseDigestAlg(digest); err != nil {
				return usageError(stderr, usage, "%v", err)
			}
		}
		if err := checkptFreezeTree(pid, out, kill, alg, stdout); err != nil {
			fmt.Fprintf(stderr, "checkpt: freeze of tree %d failed: %v\n", pid, err)
			return checkptFailed
		}
		return 0
	case thaw && !freeze && out == "" && !kill && digest == "":
		err := checkptThawTree(target, stdin, stdout, stderr)
		fmt.Fprintf(stderr, "checkpt: restore of tree %s failed: %v\n", target, err)
		return checkptFailed
	case freeze == thaw:
		return usageError(stderr, usage, "give one of -c (freeze) and -r (restore)")
	case freeze:
		return usageError(stderr, usage, "a tree freeze needs -o DIR (or -o - for a stream)")
	default:
		return usageError(stderr, usage, "a tree restore takes only -t DIR (its digests are checked with the algorithm the manifest names)")
	}
}

// checkptFreezeTree freezes the tree of pid into the new directory out, or as a stream to stdout
// (out "-"), with digests of algorithm alg in the manifest. The sentry writes the stream into a
// pipe; a goroutine splits it into out meanwhile.
func checkptFreezeTree(pid int, out string, kill bool, alg treefmt.DigestAlg, stdout io.Writer) error {
	flags := uintptr(0)
	if kill {
		flags = ckptTreeKill
	}
	if alg == treefmt.DigestSHA256 {
		flags |= ckptTreeSHA256
	}
	if out == "-" {
		f, ok := stdout.(*os.File)
		if !ok {
			return errors.New("stdout is not a file")
		}
		return freezeTreeFD(f, pid, flags)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	split := make(chan error, 1)
	go func() {
		err := treefmt.SplitStream(r, out)
		if err != nil {
			// Unblock the sentry if the split fails early: it gets EPIPE.
			r.Close()
		}
		io.Copy(io.Discard, r)
		split <- err
	}()
	ferr := freezeTreeFD(w, pid, flags)
	w.Close()
	serr := <-split
	r.Close()
	if ferr != nil {
		return ferr
	}
	if serr != nil {
		return fmt.Errorf("writing %s: %w", out, serr)
	}
	return nil
}

// freezeTreeFD calls sys_checkpoint(CKPT_FREEZE_TREE) with f as the stream's fd.
func freezeTreeFD(f *os.File, pid int, flags uintptr) error {
	_, _, errno := syscall.Syscall6(sysCheckpoint, ckptFreezeTree, f.Fd(), uintptr(uint32(pid)), flags, 0, 0)
	if errno != 0 {
		return describeTreeErrno(errno)
	}
	return nil
}

// describeTreeErrno explains the tree types' errors.
func describeTreeErrno(e syscall.Errno) error {
	switch e {
	case syscall.EINVAL:
		return fmt.Errorf("%v (checkpt is part of the tree or a child of one of its processes, a nested PID namespace, or a malformed checkpoint; the sandbox's debug log says which)", e)
	case syscall.EBUSY:
		return fmt.Errorf("%v (a process of the tree is in a ptrace stop, or is a vfork parent waiting for its child; the sandbox's log names it)", e)
	case syscall.EOPNOTSUPP:
		return fmt.Errorf("%v (this runsc-ckpt has no tree checkpoints)", e)
	}
	return describeErrno(e)
}

// checkptThawTree restores the tree checkpoint in dir. The directory is verified first (manifest,
// every image's size and digest). If this process has the pid of the tree's root (pid 1 of a fresh
// container restoring a whole container), it becomes the root: it only returns on failure.
// Otherwise the tree is restored as children of this process (with its pids where they can still
// be had), and checkpt waits for the tree's root and exits with its status.
func checkptThawTree(dir string, stdin *os.File, stdout, stderr io.Writer) error {
	m, err := treefmt.VerifyDir(dir)
	if err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	flags := uintptr(0)
	if root := treeRoot(m); root != nil && int(root.PID) == os.Getpid() {
		flags = ckptTreeSelf
	}
	r, _, errno := syscall.Syscall6(sysCheckpoint, ckptThawTree, d.Fd(), uintptr(^uint32(0)), flags, 0, 0)
	if errno != 0 {
		return fmt.Errorf("%w; the sandbox's debug log says which process and why", describeTreeErrno(errno))
	}
	d.Close()
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(int(r), &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("waiting for the restored root %d: %w", r, err)
		}
		break
	}
	switch {
	case ws.Exited():
		os.Exit(ws.ExitStatus())
	case ws.Signaled():
		os.Exit(128 + int(ws.Signal()))
	}
	return fmt.Errorf("restored root %d: wait status %#x", r, uint32(ws))
}

// treeRoot returns the process the tree was taken from, or the lowest pid without a parent in it.
func treeRoot(m *treefmt.Manifest) *treefmt.Process {
	for i := range m.Processes {
		p := &m.Processes[i]
		if m.Root != 0 && p.PID == m.Root {
			return p
		}
		if m.Root == 0 && (p.PPID == 0 || m.Process(p.PPID) == nil) {
			return p
		}
	}
	return nil
}
