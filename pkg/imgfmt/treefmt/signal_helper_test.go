package treefmt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/ckptabi"
)

// runHelper writes elf to a file and runs it on the host with args, returning its stdout and exit
// status.
func runHelper(t *testing.T, elf []byte, args ...string) (string, int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "runsc-ckpt-signal-helper")
	if err := os.WriteFile(path, elf, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), 0
	case errors.As(err, &ee):
		return out.String(), ee.ExitCode()
	default:
		t.Fatalf("running the helper: %v", err)
		return "", 0
	}
}

// startVictim starts a host process for the helper to signal.
func startVictim(t *testing.T) *exec.Cmd {
	t.Helper()
	victim := exec.Command("sleep", "30")
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = victim.Process.Kill()
		_ = victim.Wait()
	})
	return victim
}

// TestSignalHelperRefusesOnHost runs the helper as built on the host, where sys_checkpoint does not
// exist: it must refuse (200) without signalling or reporting anything.
func TestSignalHelperRefusesOnHost(t *testing.T) {
	victim := startVictim(t)
	out, status := runHelper(t, SignalHelper(), "15", fmt.Sprint(victim.Process.Pid))
	if status != 200 || out != "" {
		t.Errorf("on the host: status %d, report %q; want 200 and nothing", status, out)
	}
	time.Sleep(50 * time.Millisecond)
	if err := victim.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the helper signalled a host process: %v", err)
	}
}

// unguarded returns the helper with its sys_checkpoint probe's jump replaced by NOPs, so that its
// logic can be run on the host.
func unguarded(t *testing.T) []byte {
	t.Helper()
	elf := SignalHelper()
	const hdr = 64 + 56 // staticELF's headers
	code := elf[hdr:]
	// The probe: mov $SYS_checkpoint, %eax; syscall; cmp $-38, %rax; je usage.
	probe := []byte{0xb8, 0, 0, 0, 0, 0x0f, 0x05, 0x48, 0x83, 0xf8, 0xda, 0x74}
	binary.LittleEndian.PutUint32(probe[1:], ckptabi.SYS_checkpoint)
	if !bytes.Equal(code[signalHelperGuard-len(probe)+1:signalHelperGuard+1], probe) {
		t.Fatalf("no sys_checkpoint(%d) probe before offset %#x: % x", ckptabi.SYS_checkpoint, signalHelperGuard, code[:signalHelperGuard+2])
	}
	code[signalHelperGuard], code[signalHelperGuard+1] = 0x90, 0x90
	return elf
}

func TestSignalHelperSends(t *testing.T) {
	elf := unguarded(t)
	victim := startVictim(t)
	pid := victim.Process.Pid
	out, status := runHelper(t, elf, "15", fmt.Sprint(pid), "99999999")
	want := fmt.Sprintf("%d 0\n%d 0\n99999999 %d\n", pid, pid, syscall.ESRCH)
	if out != want || status != int(syscall.ESRCH) {
		t.Errorf("report %q, status %d; want %q, %d", out, status, want, syscall.ESRCH)
	}
	err := victim.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		t.Errorf("the victim ended with %v, want SIGTERM", err)
	}
}

func TestSignalHelperUsage(t *testing.T) {
	elf := unguarded(t)
	victim := startVictim(t)
	pid := fmt.Sprint(victim.Process.Pid)
	for _, args := range [][]string{
		nil, {"15"}, {"0", pid}, {"65", pid}, {"x", pid}, {"15", "12a"}, {"15", ""},
		{"15", "-1"}, {"15", "0"}, {"15", "1234567890"},
	} {
		if out, status := runHelper(t, elf, args...); status != 200 || out != "" {
			t.Errorf("args %q: status %d, report %q; want 200 and nothing", args, status, out)
		}
	}
	if err := victim.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("a refused command line signalled: %v", err)
	}
}
