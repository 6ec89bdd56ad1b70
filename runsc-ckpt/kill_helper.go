package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/sentry/ckpt"
)

// The signal helper is this binary run inside a container by `runsc-ckpt kill` (kill.go) to send
// a checkpoint signal from there: `SIGNO PID...`, each PID a kill(2) pid argument. It is selected
// by its argv[0] together with an environment variable, before main runs (an init function, so
// that none of runsc's CLI setup happens inside the sandbox).
//
// It reports on its stdout, a pipe read by kill.go, one or two lines per target, in order:
// "PID ERRNO" (0 for success). The first line is the result of kill(PID, 0) — whether the process
// exists and may be signalled — written before the real signal is sent; the second, the result of
// the real kill(2). The last line of a target counts. The report, not the exit status, is what
// counts: after SIGCKPTEXIT to the container's init the whole container, helper included, is
// killed, possibly before the helper writes its second line (the image is written by then: the
// init's exit follows its freeze); the first line then stands for the result.
const (
	// signalHelperName is the helper's argv[0].
	signalHelperName = "runsc-ckpt-signal-helper"
	// signalHelperEnv must be set (to anything) in the helper's environment.
	signalHelperEnv = "RUNSC_CKPT_SIGNAL_HELPER"
	// signalHelperUsage is the exit status for a bad command line or a helper started outside a
	// runsc-ckpt sandbox; lower statuses are the errno of the last failed kill(2), 0 success.
	signalHelperUsage = 200
)

func init() {
	if len(os.Args) == 0 || os.Args[0] != signalHelperName || os.Getenv(signalHelperEnv) == "" {
		return
	}
	// Not dumpable: a guest process of the same uid without CAP_SYS_PTRACE can then neither
	// ptrace the helper (to hold it stopped or forge its report) nor reach its pipes through
	// /proc/PID/fd. The host side does not rely on it (kill_guard.go).
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	os.Exit(runSignalHelper(os.Args[1:], os.Stdout, os.Stderr))
}

// signalHelperArgv returns the helper's argv for sending sig to each of targets.
func signalHelperArgv(sig linux.Signal, targets []int) []string {
	argv := []string{signalHelperName, strconv.Itoa(int(sig))}
	for _, pid := range targets {
		argv = append(argv, strconv.Itoa(pid))
	}
	return argv
}

// runSignalHelper parses args (SIGNO PID...), sends the signal to every PID with kill(2), reports
// each result on report and usage errors on stderr, and returns the exit status (see
// signalHelperUsage).
func runSignalHelper(args []string, report, stderr io.Writer) int {
	if len(args) < 2 {
		fmt.Fprintf(stderr, "%s: usage: %s SIGNO PID...\n", signalHelperName, signalHelperName)
		return signalHelperUsage
	}
	if !insideCkptSandbox() {
		// On a plain Linux host this would signal host processes: refuse.
		fmt.Fprintf(stderr, "%s: not running inside a runsc-ckpt sandbox (no sys_checkpoint)\n", signalHelperName)
		return signalHelperUsage
	}
	sig, err := strconv.Atoi(args[0])
	if err != nil || sig <= 0 || sig > linux.SignalMaximum {
		fmt.Fprintf(stderr, "%s: bad signal number %q\n", signalHelperName, args[0])
		return signalHelperUsage
	}
	status := 0
	for _, a := range args[1:] {
		pid, err := strconv.Atoi(a)
		if err != nil || pid == 0 || pid == -1 {
			fmt.Fprintf(stderr, "%s: bad pid %q\n", signalHelperName, a)
			return signalHelperUsage
		}
		for _, s := range []unix.Signal{0, unix.Signal(sig)} {
			err = unix.Kill(pid, s)
			var errno unix.Errno
			if err != nil && (!errors.As(err, &errno) || errno == 0 || int(errno) >= signalHelperUsage) {
				fmt.Fprintf(stderr, "%s: kill(%d, %d): %v\n", signalHelperName, pid, s, err)
				return signalHelperUsage
			}
			if _, werr := fmt.Fprintf(report, "%d %d\n", pid, int(errno)); werr != nil {
				fmt.Fprintf(stderr, "%s: writing the report: %v\n", signalHelperName, werr)
				return signalHelperUsage
			}
			if errno != 0 {
				status = int(errno)
				break // The process is gone or may not be signalled: no real signal.
			}
		}
	}
	return status
}

// parseSignalHelperReport parses the helper's report for targets: one or two "PID ERRNO" lines per
// target, in order, the last of which counts (see above). It returns the errno of each target (0:
// signal sent), or an error if a target has no line or the report is malformed.
func parseSignalHelperReport(report []byte, targets []int) ([]unix.Errno, error) {
	lines := strings.Split(strings.TrimSuffix(string(report), "\n"), "\n")
	if len(report) == 0 {
		lines = nil
	}
	out := make([]unix.Errno, len(targets))
	i, perTarget := -1, 0
	for _, line := range lines {
		var pid, errno int
		if n, err := fmt.Sscanf(line, "%d %d", &pid, &errno); n != 2 || err != nil || errno < 0 {
			return nil, fmt.Errorf("signal helper: bad report line %q", line)
		}
		switch {
		case i >= 0 && pid == targets[i] && perTarget < 2:
			perTarget++
		case i+1 < len(targets) && pid == targets[i+1]:
			i, perTarget = i+1, 1
		default:
			return nil, fmt.Errorf("signal helper: unexpected report line %q", line)
		}
		out[i] = unix.Errno(errno)
	}
	if i+1 != len(targets) {
		return nil, fmt.Errorf("signal helper reported %d of %d results: %q", i+1, len(targets), report)
	}
	return out, nil
}

// insideCkptSandbox reports whether the process runs on a runsc-ckpt sentry: only there does
// syscall SYS_checkpoint exist. A call with type 0 changes nothing and fails with EOPNOTSUPP (or
// EPERM under a restrictive --ckpt-group); a Linux kernel answers ENOSYS.
func insideCkptSandbox() bool {
	_, _, errno := unix.Syscall6(ckpt.SYS_checkpoint, 0, ^uintptr(0), ^uintptr(0), 0, 0, 0)
	return errno != unix.ENOSYS
}
