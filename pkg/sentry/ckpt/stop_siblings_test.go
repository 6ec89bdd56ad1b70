package ckpt

import (
	"testing"
	"time"
)

// TestSiblingBackoff checks the freezer's pauses while siblings stop: short first, doubling,
// never above siblingPoll, and siblingPoll from the seventh on.
func TestSiblingBackoff(t *testing.T) {
	want := []time.Duration{25 * time.Microsecond, 50 * time.Microsecond, 100 * time.Microsecond,
		200 * time.Microsecond, 400 * time.Microsecond, 800 * time.Microsecond, time.Millisecond,
		time.Millisecond}
	for n, w := range want {
		if got := siblingBackoff(n); got != w {
			t.Errorf("siblingBackoff(%d) = %v, want %v", n, got, w)
		}
	}
	if got := siblingBackoff(1000); got != siblingPoll {
		t.Errorf("siblingBackoff(1000) = %v, want %v", got, siblingPoll)
	}
}
