package harness

import (
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// becomeSubreaper makes the test process the child subreaper of everything it starts: a sandbox
// whose `create` exited is re-parented to the test process instead of init, so its exit status
// (the root container's) can still be collected with reap.
func becomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// reap waits for the process pid, an adopted sandbox, to exit and returns its exit status in
// runsc's convention (128+n for a death by signal n).
func reap(pid int, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return -1, fmt.Errorf("wait4(%d): %w", pid, err)
		case got == pid && ws.Signaled():
			return 128 + int(ws.Signal()), nil
		case got == pid:
			return ws.ExitStatus(), nil
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("pid %d still running after %v", pid, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
