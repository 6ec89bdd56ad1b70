package main

import (
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/runsc/container"
	"gvisor.dev/gvisor/runsc/sandbox"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/sentry/ckpt"
)

func TestMayNameCkptSignal(t *testing.T) {
	for s, want := range map[string]bool{
		"SIGCKPT": true, "sigckpt": true, "CKPT": true, "SIGCKPTEXIT": true, "ckptexit": true,
		"62": true, "9": true, "TERM": false, "SIGKILL": false, "": false, "CKPTX": false,
	} {
		if got := mayNameCkptSignal(s); got != want {
			t.Errorf("mayNameCkptSignal(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestCkptSignalArg(t *testing.T) {
	def := ckpt.DefaultPolicy()
	custom := def
	custom.Signal = 40
	off := def
	off.Signal = 0
	for _, c := range []struct {
		arg     string
		p       ckpt.Policy
		sig     linux.Signal
		isCkpt  bool
		wantErr bool
	}{
		{"SIGCKPT", def, ckpt.SIGCKPT, true, false},
		{"ckpt", def, ckpt.SIGCKPT, true, false},
		{"SIGCKPTEXIT", def, ckpt.SIGCKPTEXIT, true, false},
		{"62", def, ckpt.SIGCKPT, true, false},
		{"63", def, ckpt.SIGCKPTEXIT, true, false},
		{"9", def, 0, false, false},
		{"SIGCKPT", custom, 40, true, false},
		{"40", custom, 40, true, false},
		{"62", custom, 0, false, false},
		{"63", custom, ckpt.SIGCKPTEXIT, true, false},
		{"SIGCKPT", off, 0, false, true},
		{"SIGCKPTEXIT", off, 0, false, true},
		{"62", off, 0, false, false},
	} {
		sig, isCkpt, err := ckptSignalArg(c.arg, c.p)
		if sig != c.sig || isCkpt != c.isCkpt || (err != nil) != c.wantErr {
			t.Errorf("ckptSignalArg(%q, signal %d) = %d, %v, %v; want %d, %v, error %v", c.arg, c.p.Signal, sig, isCkpt, err, c.sig, c.isCkpt, c.wantErr)
		}
	}
}

func TestParseSignalHelperReport(t *testing.T) {
	for _, c := range []struct {
		report string
		want   []unix.Errno
	}{
		{"1 0\n7 3\n", []unix.Errno{0, unix.ESRCH}},           // pre-checks failed or sole lines
		{"1 0\n1 0\n7 0\n7 1\n", []unix.Errno{0, unix.EPERM}}, // pre-check and real kill each
		// SIGCKPTEXIT to init: the helper died with the container after its pre-check line.
		{"7 0\n7 0\n1 0\n", []unix.Errno{0, 0}},
	} {
		targets := []int{1, 7}
		if c.report[0] == '7' {
			targets = []int{7, 1}
		}
		got, err := parseSignalHelperReport([]byte(c.report), targets)
		if err != nil || len(got) != 2 || got[0] != c.want[0] || got[1] != c.want[1] {
			t.Errorf("parse of %q = %v, %v; want %v", c.report, got, err, c.want)
		}
	}
	for _, bad := range []struct {
		report  string
		targets []int
	}{
		{"", []int{1}},                // helper died before reporting
		{"1 0\n", []int{1, 7}},        // incomplete
		{"2 0\n", []int{1}},           // wrong pid
		{"1 x\n", []int{1}},           // malformed
		{"1 -3\n", []int{1}},          // negative errno
		{"1 0\n7 0\n", []int{1}},      // too many
		{"1 0\n1 0\n1 0\n", []int{1}}, // three lines for one target
		{"7 0\n1 0\n", []int{1, 7}},   // out of order
	} {
		if got, err := parseSignalHelperReport([]byte(bad.report), bad.targets); err == nil {
			t.Errorf("parse of %q for %v = %v, want an error", bad.report, bad.targets, got)
		}
	}
}

func TestKillResult(t *testing.T) {
	targets := []int{1, 7}
	if err := killResult(62, targets, []unix.Errno{0, 0}, false); err != nil {
		t.Errorf("all sent: %v", err)
	}
	if err := killResult(62, targets, []unix.Errno{0, unix.EPERM}, false); err == nil || !strings.Contains(err.Error(), "kill(7, 62)") {
		t.Errorf("one EPERM: %v", err)
	}
	if err := killResult(62, targets, []unix.Errno{0, unix.ESRCH}, false); err == nil {
		t.Error("ESRCH without --all is a failure")
	}
	if err := killResult(62, targets, []unix.Errno{0, unix.ESRCH}, true); err != nil {
		t.Errorf("ESRCH of a vanished process with --all: %v", err)
	}
	if err := killResult(62, targets, []unix.Errno{unix.ESRCH, unix.ESRCH}, true); err == nil {
		t.Error("--all with nobody signalled succeeded")
	}
}

// TestKillTargetsRootInit checks that the root container's init is addressed as pid 1 without
// listing the processes: these containers have no running sandbox, so a process list (a control
// RPC) would fail.
func TestKillTargetsRootInit(t *testing.T) {
	root := &container.Container{ID: "pod", Sandbox: &sandbox.Sandbox{ID: "pod"}}
	if got, err := killTargets(root, killSelection{}); err != nil || !slices.Equal(got, []int{1}) {
		t.Errorf("root container: killTargets = %v, %v; want [1] without listing processes", got, err)
	}
	if got, err := killTargets(root, killSelection{pid: 7}); err != nil || !slices.Equal(got, []int{7}) {
		t.Errorf("--pid 7: killTargets = %v, %v; want [7]", got, err)
	}
	// A subcontainer's init, --all and --pgid need the process list: with no sandbox to ask,
	// they fail rather than guess.
	sub := &container.Container{ID: "app", Sandbox: &sandbox.Sandbox{ID: "pod"}}
	for _, tc := range []struct {
		c   *container.Container
		sel killSelection
	}{{sub, killSelection{}}, {root, killSelection{all: true}}, {root, killSelection{pgid: 3}}} {
		if got, err := killTargets(tc.c, tc.sel); err == nil {
			t.Errorf("container %q, %+v: killTargets = %v without a sandbox to list the processes", tc.c.ID, tc.sel, got)
		}
	}
}
