package main

import (
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
)

// TestManifestClock: the template's saved clock becomes the manifest's; its boot time too when
// the manifest has one not after the freeze, else (an older build's manifest, or a bad one) the
// template's stays.
func TestManifestClock(t *testing.T) {
	tmpl := treefmt.Clock{MonotonicNS: 300e6, RealtimeNS: 2_000_000_000e9, BootRealtimeNS: 2_000_000_000e9 - 300e6}
	const mono, real = int64(5_071_000_000), int64(1_900_000_000e9)
	for _, tc := range []struct {
		boot, want int64
	}{
		{boot: real - mono, want: real - mono},
		{boot: real, want: real},
		{boot: 0, want: tmpl.BootRealtimeNS},
		{boot: real + 1, want: tmpl.BootRealtimeNS},
		{boot: -1, want: tmpl.BootRealtimeNS},
	} {
		got := manifestClock(&treefmt.Clock{MonotonicNS: mono, RealtimeNS: real, BootRealtimeNS: tc.boot})(tmpl)
		if want := (treefmt.Clock{MonotonicNS: mono, RealtimeNS: real, BootRealtimeNS: tc.want}); got != want {
			t.Errorf("manifest boot time %d: rewrite to %+v, want %+v", tc.boot, got, want)
		}
	}
}

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
