package treefmt

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHeldRestoreInitWaitsForSIGUSR1 runs the held restore init on the host: it must name itself
// restore-held and stay there, writing nothing, through a SIGUSR2 (not its signal; ignored) and
// until SIGUSR1; then it goes on as RestoreInit, renamed restore-init, whose sys_checkpoint the
// host does not have: its failure line and status 5.
func TestHeldRestoreInitWaitsForSIGUSR1(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "restore-init")
	if err := os.WriteFile(path, HeldRestoreInit(), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, dir)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	comm := filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "comm")
	held := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if b, err := os.ReadFile(comm); err == nil && strings.TrimSpace(string(b)) == HeldInitName {
			held = true
			break
		}
	}
	if !held {
		t.Fatalf("the init never named itself %q", HeldInitName)
	}
	// Another signal (one ignored by default: the init has no handlers) does not release it.
	_ = cmd.Process.Signal(syscall.SIGWINCH)
	select {
	case err := <-done:
		t.Fatalf("the held init went on before SIGUSR1: %v (stderr %q)", err, errOut.String())
	case <-time.After(300 * time.Millisecond):
	}
	if out.Len() != 0 || errOut.Len() != 0 {
		t.Fatalf("the held init wrote %q / %q while held", out.String(), errOut.String())
	}
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the init did not go on after SIGUSR1")
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 5 {
		t.Fatalf("after SIGUSR1: %v, want exit status 5 (RestoreInit's failure on a host)", err)
	}
	if errOut.String() != restoreInitMsg || out.Len() != 0 {
		t.Errorf("after SIGUSR1: stdout %q, stderr %q, want stderr %q", out.String(), errOut.String(), restoreInitMsg)
	}
}

// TestHeldRestoreInitIsRestoreInitAfterHold checks that the held init runs RestoreInit's code
// unchanged after its hold.
func TestHeldRestoreInitIsRestoreInitAfterHold(t *testing.T) {
	held, plain := HeldRestoreInit(), RestoreInit()
	if !bytes.HasSuffix(held, restoreInitCode()) || !bytes.HasSuffix(plain, restoreInitCode()) {
		t.Fatal("the held init does not end with RestoreInit's code")
	}
}
