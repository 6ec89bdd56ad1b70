package main

import (
	"strings"
	"testing"
)

// TestChooseRestoreClock: --restore-clock wins over the global --ckpt-restore-clock, which wins
// over the bundle's annotation; the default continues; bad values name their source.
func TestChooseRestoreClock(t *testing.T) {
	ann := func(v string) map[string]string { return map[string]string{restoreClockAnnotation: v} }
	for _, tc := range []struct {
		name, cmd, global string
		annotations       map[string]string
		want, errHas      string
	}{
		{"default", "", "", nil, clockContinue, ""},
		{"annotation", "", "", ann("reset"), clockReset, ""},
		{"global over annotation", "", "continue", ann("reset"), clockContinue, ""},
		{"command over global", "reset", "continue", nil, clockReset, ""},
		{"bad command", "later", "", nil, "", `"later"`},
		{"bad global", "", "never", nil, "", `"never"`},
		{"bad annotation", "", "", ann("x"), "", restoreClockAnnotation},
	} {
		got, err := chooseRestoreClock(tc.cmd, tc.global, tc.annotations)
		if tc.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("%s: err %v, want one naming %s", tc.name, err, tc.errHas)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}
