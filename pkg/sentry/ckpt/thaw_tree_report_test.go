package ckpt

import (
	"errors"
	"strings"
	"testing"
)

func TestTreeFailureLine(t *testing.T) {
	for _, tc := range []struct {
		name, err, want string
	}{
		{"plain", "pid 1: fd 3: /c: stale file handle", "runsc-ckpt restore: pid 1: fd 3: /c: stale file handle\n"},
		{"control characters", "pid 2: image a\nb\x1b[2J", `runsc-ckpt restore: pid 2: image a\nb\x1b[2J` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(treeFailureLine(errors.New(tc.err))); got != tc.want {
				t.Errorf("treeFailureLine(%q) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
	long := string(treeFailureLine(errors.New(strings.Repeat("x", 5000))))
	if len(long) > maxReportLen+64 || strings.Count(long, "\n") != 1 || !strings.HasSuffix(long, "...\n") {
		t.Errorf("a long reason is not cut to one bounded line: %d bytes, %q...", len(long), long[:40])
	}
}
