package treefmt

import (
	"bytes"
	"strings"
	"testing"
)

// TestManifestClockRoundTrip encodes and decodes a manifest with a clock (with and without a boot
// time, as older builds wrote it) and without one: the clock comes back as written, adds no
// version, a boot time of 0 is not written, and a manifest without a clock decodes with none (the
// restore then keeps the new sandbox's clock).
func TestManifestClockRoundTrip(t *testing.T) {
	for _, clock := range []*Clock{
		{MonotonicNS: 5_071_000_000, RealtimeNS: 1_764_800_000_123_456_789, BootRealtimeNS: 1_764_799_995_052_000_000},
		{MonotonicNS: 5_071_000_000, RealtimeNS: 1_764_800_000_123_456_789},
		nil,
	} {
		m := &Manifest{Format: FormatName, Version: Version, Hostname: "h", Clock: clock, Processes: []Process{
			{PID: 1, PGID: 1, SID: 1, TIDs: []int32{1}, Comm: "init", Image: ImageName(1), ImageSize: 1, ImageSHA256: strings.Repeat("0", 64)},
		}}
		if got := m.NeededVersion(); got > Version {
			t.Errorf("NeededVersion with clock %+v = %d, want at most %d", clock, got, Version)
		}
		var b bytes.Buffer
		if err := m.Encode(&b); err != nil {
			t.Fatal(err)
		}
		if has := strings.Contains(b.String(), `"clock"`); has != (clock != nil) {
			t.Errorf("encoded manifest has a clock: %v, want %v:\n%s", has, clock != nil, b.String())
		}
		if has := strings.Contains(b.String(), `"boot_realtime_ns"`); has != (clock != nil && clock.BootRealtimeNS != 0) {
			t.Errorf("encoded manifest has a boot time: %v, clock %+v:\n%s", has, clock, b.String())
		}
		got, err := DecodeManifest(&b)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case clock == nil && got.Clock != nil:
			t.Errorf("decoded clock %+v, want none", got.Clock)
		case clock != nil && (got.Clock == nil || *got.Clock != *clock):
			t.Errorf("decoded clock %+v, want %+v", got.Clock, clock)
		}
	}
}
