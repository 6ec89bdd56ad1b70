package engines

import (
	"bufio"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Cleanup kills every process whose command line mentions e.Dir or e.RunDir (sandboxes, gofers,
// containerd shims, conmon), unmounts what is still mounted under them and removes e.RunDir.
// Call it after the engines stopped.
func (e *Env) Cleanup(t *testing.T) {
	t.Helper()
	defer func() {
		if err := os.RemoveAll(e.RunDir); err != nil {
			t.Logf("removing %s: %v", e.RunDir, err)
		}
	}()
	for round := 0; round < 50; round++ {
		pids := e.processes()
		if len(pids) == 0 {
			break
		}
		if round == 0 {
			t.Logf("killing %d processes left under %s", len(pids), e.Dir)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	mounts := e.mounts()
	sort.Sort(sort.Reverse(sort.StringSlice(mounts))) // children first
	for _, m := range mounts {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			t.Logf("unmounting %s: %v", m, err)
		}
	}
}

// processes returns the pids of processes (other than this one) whose command line mentions
// e.Dir or e.RunDir.
func (e *Env) processes() []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err == nil && (strings.Contains(string(b), e.Dir) || strings.Contains(string(b), e.RunDir)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// mounts returns the mount points under e.Dir and e.RunDir.
func (e *Env) mounts() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && (strings.HasPrefix(fields[4], e.Dir+"/") || strings.HasPrefix(fields[4], e.RunDir+"/")) {
			out = append(out, fields[4])
		}
	}
	return out
}
