package ckpt

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"gvisor.dev/gvisor/pkg/cpuid"
	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/pgalloc"
	sentrytime "gvisor.dev/gvisor/pkg/sentry/time"
	"gvisor.dev/gvisor/pkg/sentry/usage"
	"gvisor.dev/gvisor/pkg/state"
	"gvisor.dev/gvisor/pkg/state/statefile"
)

// testStateFile returns a state file laid out as Kernel.SaveTo writes one (the CPUID feature
// set's stream, then the kernel's, then tail), with a running Timekeeper standing in for the
// kernel, the realtime just before the Timekeeper was saved and the Timekeeper's boot time.
func testStateFile(t *testing.T, tail string) (file []byte, real, boot int64) {
	t.Helper()
	ctx := context.Background()
	mf := newTestMemoryFile(t)
	fr, err := mf.Allocate(hostarch.PageSize, pgalloc.AllocOpts{Kind: usage.System})
	if err != nil {
		t.Fatal(err)
	}
	tk := kernel.NewTimekeeper()
	tk.SetClocks(sentrytime.NewCalibratedClocks(false), kernel.NewVDSOParamPage(mf, fr))
	defer tk.Destroy()
	tk.Pause()
	real, err = tk.GetTime(sentrytime.Realtime)
	if err != nil {
		t.Fatal(err)
	}
	boot = tk.BootTime().Nanoseconds()
	var buf bytes.Buffer
	w, err := statefile.NewWriter(&buf, nil, map[string]string{"runsc_version": "test"})
	if err != nil {
		t.Fatal(err)
	}
	cpuid.Initialize()
	fs := cpuid.HostFeatureSet()
	if _, err := state.Save(ctx, w, &fs); err != nil {
		t.Fatalf("state.Save of the feature set: %v", err)
	}
	if _, err := state.Save(ctx, w, tk); err != nil {
		t.Fatalf("state.Save of the Timekeeper: %v", err)
	}
	if _, err := io.WriteString(w, tail); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), real, boot
}

// TestRewriteStateFileClock rewrites the Timekeeper's saved clock in a state file and loads the
// result as Kernel.LoadFrom does: the restored CLOCK_MONOTONIC continues from the new value, the
// boot time is the new one as is, and the metadata, the feature set and what follows the streams
// are kept.
func TestRewriteStateFileClock(t *testing.T) {
	ctx := context.Background()
	const tail = "memory files follow the streams"
	in, saveReal, saveBoot := testStateFile(t, tail)

	const lost = int64(2 * time.Second)
	wantMono := int64(3600 * time.Second)
	var got, want treefmt.Clock
	var out bytes.Buffer
	err := RewriteStateFileClock(&out, bytes.NewReader(in), func(c treefmt.Clock) treefmt.Clock {
		got = c
		// The sandbox booted wantMono before the freeze, which was lost ago.
		want = treefmt.Clock{MonotonicNS: wantMono, RealtimeNS: c.RealtimeNS - lost, BootRealtimeNS: c.RealtimeNS - lost - wantMono}
		return want
	})
	if err != nil {
		t.Fatalf("RewriteStateFileClock: %v", err)
	}
	if got.MonotonicNS < 0 || got.MonotonicNS > int64(time.Minute) || got.RealtimeNS < saveReal || got.RealtimeNS > saveReal+int64(time.Minute) {
		t.Errorf("set was given saveMonotonic %d, saveRealtime %d; want a fresh clock's, just after %d", got.MonotonicNS, got.RealtimeNS, saveReal)
	}
	if got.BootRealtimeNS != saveBoot || saveBoot == 0 {
		t.Errorf("set was given bootTime %d, want the Timekeeper's %d", got.BootRealtimeNS, saveBoot)
	}

	r, md, err := statefile.NewReader(io.NopCloser(&out), nil)
	if err != nil {
		t.Fatalf("reading the rewritten state file: %v", err)
	}
	if md["runsc_version"] != "test" {
		t.Errorf("metadata %v lost runsc_version", md)
	}
	var fs cpuid.FeatureSet
	if _, err := state.Load(ctx, r, &fs); err != nil {
		t.Fatalf("state.Load of the feature set: %v", err)
	}
	tk := &kernel.Timekeeper{}
	if _, err := state.Load(ctx, r, tk); err != nil {
		t.Fatalf("state.Load of the Timekeeper: %v", err)
	}
	rest, err := io.ReadAll(r)
	if err != nil || string(rest) != tail {
		t.Errorf("after the streams: %q (err %v), want %q", rest, err, tail)
	}

	mf := newTestMemoryFile(t)
	fr, err := mf.Allocate(hostarch.PageSize, pgalloc.AllocOpts{Kind: usage.System})
	if err != nil {
		t.Fatal(err)
	}
	tk.SetClocks(sentrytime.NewCalibratedClocks(false), kernel.NewVDSOParamPage(mf, fr))
	defer tk.Destroy()
	if m, err := tk.GetTime(sentrytime.Monotonic); err != nil || m < wantMono+lost || m > wantMono+lost+int64(time.Minute) {
		t.Errorf("restored CLOCK_MONOTONIC = %d (err %v), want %d plus the little time the test took", m, err, wantMono+lost)
	}
	if b := tk.BootTime().Nanoseconds(); b != want.BootRealtimeNS {
		t.Errorf("restored BootTime = %d, want %d (the original's was %d)", b, want.BootRealtimeNS, saveBoot)
	}
	// /proc/uptime's reading: the realtime since the boot time, which continues as the clock.
	now, err := tk.GetTime(sentrytime.Realtime)
	if err != nil {
		t.Fatal(err)
	}
	if up := now - tk.BootTime().Nanoseconds(); up < wantMono+lost || up > wantMono+lost+int64(time.Minute) {
		t.Errorf("restored uptime = %d ns, want %d plus the little time the test took", up, wantMono+lost)
	}
}

// TestRewriteStateFileClockKeepsBootTime: a rewrite that returns the saved boot time (a manifest
// without one) leaves the restored Timekeeper's boot time the saved one, and a boot time of 0
// (encoded as nil) round-trips.
func TestRewriteStateFileClockKeepsBootTime(t *testing.T) {
	ctx := context.Background()
	in, _, saveBoot := testStateFile(t, "")
	load := func(t *testing.T, set func(treefmt.Clock) treefmt.Clock) int64 {
		t.Helper()
		var out bytes.Buffer
		if err := RewriteStateFileClock(&out, bytes.NewReader(in), set); err != nil {
			t.Fatalf("RewriteStateFileClock: %v", err)
		}
		r, _, err := statefile.NewReader(io.NopCloser(&out), nil)
		if err != nil {
			t.Fatal(err)
		}
		var fs cpuid.FeatureSet
		if _, err := state.Load(ctx, r, &fs); err != nil {
			t.Fatal(err)
		}
		tk := &kernel.Timekeeper{}
		if _, err := state.Load(ctx, r, tk); err != nil {
			t.Fatalf("state.Load of the Timekeeper: %v", err)
		}
		return tk.BootTime().Nanoseconds()
	}
	if b := load(t, func(c treefmt.Clock) treefmt.Clock { c.MonotonicNS = 1; return c }); b != saveBoot {
		t.Errorf("boot time kept: restored %d, want %d", b, saveBoot)
	}
	zero := load(t, func(c treefmt.Clock) treefmt.Clock { c.BootRealtimeNS = 0; return c })
	if zero != 0 {
		t.Errorf("boot time set to 0: restored %d", zero)
	}
	var seen int64 = -1
	var out bytes.Buffer
	if err := RewriteStateFileClock(&out, bytes.NewReader(in), func(c treefmt.Clock) treefmt.Clock { c.BootRealtimeNS = 0; return c }); err != nil {
		t.Fatal(err)
	}
	if err := RewriteStateFileClock(io.Discard, &out, func(c treefmt.Clock) treefmt.Clock { seen = c.BootRealtimeNS; return c }); err != nil {
		t.Fatalf("rewriting a rewritten file: %v", err)
	}
	if seen != 0 {
		t.Errorf("a zero boot time read back as %d", seen)
	}
}

// TestRewriteStateFileClockErrors: a file that is not a state file, and a kernel stream without
// a Timekeeper, are refused.
func TestRewriteStateFileClockErrors(t *testing.T) {
	ctx := context.Background()
	keep := func(c treefmt.Clock) treefmt.Clock { return c }
	if err := RewriteStateFileClock(io.Discard, strings.NewReader("not a state file"), keep); err == nil {
		t.Errorf("a file without the magic was rewritten")
	}

	var buf bytes.Buffer
	w, err := statefile.NewWriter(&buf, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cpuid.Initialize()
	fs := cpuid.HostFeatureSet()
	for i := 0; i < 2; i++ { // Two feature set streams: no Timekeeper.
		if _, err := state.Save(ctx, w, &fs); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	err = RewriteStateFileClock(io.Discard, bytes.NewReader(buf.Bytes()), keep)
	if err == nil || !strings.Contains(err.Error(), "0 Timekeepers") {
		t.Errorf("a kernel stream without a Timekeeper: err = %v, want 0 Timekeepers", err)
	}

	in, _, _ := testStateFile(t, "")
	if err := RewriteStateFileClock(io.Discard, bytes.NewReader(in[:len(in)/2]), keep); err == nil {
		t.Errorf("a truncated state file was rewritten")
	}
}
