package ckpt

import (
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
)

// TestDefaultUnblocked: the restore sends the recorded job-control signal again only when the
// image's action for it is the default and its first thread does not block it (restoreStop falls
// back to SIGSTOP otherwise).
func TestDefaultUnblocked(t *testing.T) {
	plan := func(handler uint64, mask uint64) *thawPlan {
		p := &imgfmt.Process{Threads: []imgfmt.Thread{{TID: 1, SigMask: mask}}}
		p.Signals.Actions[linux.SIGTSTP-1].Handler = handler
		return &thawPlan{proc: p}
	}
	tstp := uint64(linux.SignalSetOf(linux.SIGTSTP))
	for _, tc := range []struct {
		name string
		p    *thawPlan
		sig  linux.Signal
		want bool
	}{
		{"default, unblocked", plan(linux.SIG_DFL, 0), linux.SIGTSTP, true},
		{"other signals blocked", plan(linux.SIG_DFL, ^tstp), linux.SIGTSTP, true},
		{"handled", plan(0x401000, 0), linux.SIGTSTP, false},
		{"ignored", plan(linux.SIG_IGN, 0), linux.SIGTSTP, false},
		{"blocked", plan(linux.SIG_DFL, tstp), linux.SIGTSTP, false},
		{"no threads", &thawPlan{proc: &imgfmt.Process{}}, linux.SIGTSTP, false},
		{"realtime", plan(linux.SIG_DFL, 0), linux.Signal(34), false},
	} {
		if got := defaultUnblocked(tc.p, tc.sig); got != tc.want {
			t.Errorf("%s: defaultUnblocked = %t, want %t", tc.name, got, tc.want)
		}
	}
}
