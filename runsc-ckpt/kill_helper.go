package main

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
)

// The signal helper is treefmt.SignalHelper, a tiny static program run inside a container by
// `runsc-ckpt kill` (kill.go) to send a checkpoint signal from there: `SIGNO PID...`, each PID a
// kill(2) pid argument (> 0).
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
	// signalHelperUsage is the helper's exit status for a command line it refuses or a sandbox
	// without sys_checkpoint; lower statuses are the errno of the last failed kill(2), 0 success.
	signalHelperUsage = 200
)

// signalHelperArgv returns the helper's argv for sending sig to each of targets.
func signalHelperArgv(sig linux.Signal, targets []int) []string {
	argv := []string{signalHelperName, strconv.Itoa(int(sig))}
	for _, pid := range targets {
		argv = append(argv, strconv.Itoa(pid))
	}
	return argv
}

// targetResult is one "PID ERRNO" line of a report: the signal helper's, or the kill channel's
// answers (kill_fifo.go), which say the same per target.
type targetResult struct {
	pid   int
	errno unix.Errno
}

// parseSignalHelperReport parses the helper's report for targets: one or two "PID ERRNO" lines per
// target, in order, the last of which counts (see above). It returns the errno of each target (0:
// signal sent), or an error if a target has no line or the report is malformed.
func parseSignalHelperReport(report []byte, targets []int) ([]unix.Errno, error) {
	lines := strings.Split(strings.TrimSuffix(string(report), "\n"), "\n")
	if len(report) == 0 {
		lines = nil
	}
	results := make([]targetResult, 0, len(lines))
	for _, line := range lines {
		var pid, errno int
		if n, err := fmt.Sscanf(line, "%d %d", &pid, &errno); n != 2 || err != nil || errno < 0 {
			return nil, fmt.Errorf("signal helper: bad report line %q", line)
		}
		results = append(results, targetResult{pid: pid, errno: unix.Errno(errno)})
	}
	errnos, err := matchTargetResults(results, targets)
	if err != nil {
		return nil, fmt.Errorf("signal helper: %w", err)
	}
	return errnos, nil
}

// matchTargetResults checks that results hold one or two lines per target, in the order of
// targets, and returns each target's errno: its last line's.
func matchTargetResults(results []targetResult, targets []int) ([]unix.Errno, error) {
	out := make([]unix.Errno, len(targets))
	i, perTarget := -1, 0
	for _, r := range results {
		switch {
		case i >= 0 && r.pid == targets[i] && perTarget < 2:
			perTarget++
		case i+1 < len(targets) && r.pid == targets[i+1]:
			i, perTarget = i+1, 1
		default:
			return nil, fmt.Errorf("unexpected result %d %d in the report for %v", r.pid, int(r.errno), targets)
		}
		out[i] = r.errno
	}
	if i+1 != len(targets) {
		return nil, fmt.Errorf("%d of %d targets reported: %v", i+1, len(targets), results)
	}
	return out, nil
}
