package ckpt

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/pgalloc"
	sentrytime "gvisor.dev/gvisor/pkg/sentry/time"
	"gvisor.dev/gvisor/pkg/sentry/usage"
	"gvisor.dev/gvisor/pkg/state"
	"gvisor.dev/gvisor/pkg/state/wire"
)

// rewriteTimekeeperStream returns the state stream in (a state.Save of a *kernel.Timekeeper) with
// the root object's saveMonotonic and saveRealtime set to mono and real.
func rewriteTimekeeperStream(in []byte, mono, real int64) (out []byte, err error) {
	fields := (&kernel.Timekeeper{}).StateFields()
	monoIdx, realIdx := slices.Index(fields, "saveMonotonic"), slices.Index(fields, "saveRealtime")
	if monoIdx < 0 || realIdx < 0 {
		return nil, fmt.Errorf("Timekeeper.StateFields %q lacks saveMonotonic/saveRealtime", fields)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed state stream: %v", r)
		}
	}()
	r := &wire.Reader{Reader: bytes.NewReader(in)}
	var buf bytes.Buffer
	w := &wire.Writer{Writer: &buf}
	n, object, err := state.ReadHeader(r)
	if err != nil || !object {
		return nil, fmt.Errorf("state header: object=%v: %v", object, err)
	}
	if err := state.WriteHeader(w, n, true); err != nil {
		return nil, err
	}
	rewritten := false
	for i := uint64(0); i < n; {
		obj := wire.Load(r)
		id, ok := obj.(wire.Uint)
		if !ok {
			wire.Save(w, obj) // A type.
			continue
		}
		i++
		enc := wire.Load(r)
		if id == 1 {
			s, ok := enc.(*wire.Struct)
			if !ok || s.Fields() != len(fields) {
				return nil, fmt.Errorf("root object is a %T, not the Timekeeper", enc)
			}
			*s.Field(monoIdx) = wire.Int(mono)
			*s.Field(realIdx) = wire.Int(real)
			rewritten = true
		}
		wire.Save(w, id)
		wire.Save(w, enc)
	}
	if !rewritten {
		return nil, fmt.Errorf("no root object")
	}
	return buf.Bytes(), nil
}

// panics reports whether f panics.
func panics(f func()) (p bool) {
	defer func() { p = recover() != nil }()
	f()
	return false
}

// TestClockRouteHazards runs the one exported route to move a Timekeeper's CLOCK_MONOTONIC
// forward (replay upstream's restore on the live Timekeeper; docs/upstream-gaps.md, "CLOCK_MONOTONIC
// of a restored container") on a Timekeeper of its own, outside any sandbox. It checks that the
// mechanics work — the clock continues from the rewritten saveMonotonic plus the realtime that
// passed — and that the three hazards that keep the route out of the sentry are still there: the
// zeroed Timekeeper panics its readers, an AfterFunc timer made before the swap is never run, and
// a second param page object over the same page makes SetClocks panic. When a gVisor bump makes
// one of these checks fail, re-read the route: it may have become safe (or broken).
func TestClockRouteHazards(t *testing.T) {
	ctx := context.Background()
	mf := newTestMemoryFile(t)
	fr, err := mf.Allocate(hostarch.PageSize, pgalloc.AllocOpts{Kind: usage.System})
	if err != nil {
		t.Fatal(err)
	}
	params := kernel.NewVDSOParamPage(mf, fr)
	tk := kernel.NewTimekeeper()
	tk.SetClocks(sentrytime.NewCalibratedClocks(false), params)
	defer tk.Destroy()
	r0, err := tk.GetTime(sentrytime.Realtime)
	if err != nil {
		t.Fatal(err)
	}

	// The checkpoint's clock: CLOCK_MONOTONIC was at 1000 s, 2 s of realtime ago.
	const lost = int64(2 * time.Second)
	ckptMono, ckptReal := int64(1000*time.Second), r0-lost

	tk.Pause()
	// A timer made before the swap (the scheduler is stopped, so it cannot have run yet).
	oldFired := make(chan struct{})
	tk.AfterFunc(time.Millisecond, func() { close(oldFired) })
	var buf bytes.Buffer
	if _, err := state.Save(ctx, &buf, tk); err != nil {
		t.Fatalf("state.Save of the Timekeeper: %v", err)
	}
	stream, err := rewriteTimekeeperStream(buf.Bytes(), ckptMono, ckptReal)
	if err != nil {
		t.Fatal(err)
	}
	*tk = kernel.Timekeeper{}
	if !panics(func() { tk.GetTime(sentrytime.Monotonic) }) {
		t.Errorf("GetTime on a zeroed Timekeeper no longer panics: the swap's window may be safe now")
	}
	if _, err := state.Load(ctx, bytes.NewReader(stream), tk); err != nil {
		t.Fatalf("state.Load of the rewritten Timekeeper: %v", err)
	}
	tk.SetClocks(sentrytime.NewCalibratedClocks(false), params)
	if m, err := tk.GetTime(sentrytime.Monotonic); err != nil || m < ckptMono+lost {
		t.Errorf("after the swap CLOCK_MONOTONIC = %d (err %v), want >= %d: the route's mechanics broke", m, err, ckptMono+lost)
	}

	newFired := make(chan struct{})
	tk.AfterFunc(time.Millisecond, func() { close(newFired) })
	select {
	case <-newFired:
	case <-time.After(time.Minute):
		t.Fatalf("an AfterFunc made after the swap did not run")
	}
	select {
	case <-oldFired:
		t.Errorf("an AfterFunc made before the swap ran: timers may survive the swap now")
	default:
	}

	// A second param page object over the same page: its sequence count (0) is not the page's.
	tk.Pause()
	*tk = kernel.Timekeeper{}
	if _, err := state.Load(ctx, bytes.NewReader(stream), tk); err != nil {
		t.Fatalf("state.Load of the rewritten Timekeeper: %v", err)
	}
	if !panics(func() { tk.SetClocks(sentrytime.NewCalibratedClocks(false), kernel.NewVDSOParamPage(mf, fr)) }) {
		t.Errorf("SetClocks with a second param page object over the page no longer panics")
	}
}
