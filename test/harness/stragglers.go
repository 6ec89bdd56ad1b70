package harness

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// processesOf returns the pids of the processes that belong to the sandbox state root root: every
// runsc-ckpt process of a sandbox (the command, the sandbox, the gofer, their re-executed hops)
// carries --root=<root> on its command line.
func processesOf(root string) []int {
	needle := []byte("--root=" + root + "\x00")
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(cmdline, needle) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killStragglers kills every process that still belongs to root and reaps those that are
// children of the test process (it is their subreaper), waiting at most timeout for them to go.
// It returns the pids still present at the end. A command killed while it was creating a sandbox
// leaves such processes behind: the sandbox and gofer run in their own sessions, and runsc had not
// yet recorded the container in root, so `delete` does not know about them.
func killStragglers(root string, timeout time.Duration) []int {
	deadline := time.Now().Add(timeout)
	for {
		pids := processesOf(root)
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			var ws syscall.WaitStatus
			_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil) // ECHILD if not ours: fine.
		}
		if len(pids) == 0 || time.Now().After(deadline) {
			return pids
		}
		time.Sleep(20 * time.Millisecond)
	}
}
