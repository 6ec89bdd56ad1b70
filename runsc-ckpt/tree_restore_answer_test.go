package main

import (
	"errors"
	"testing"
	"time"
)

func TestRefusalsStopped(t *testing.T) {
	refuse := errors.New("connection refused")
	clock := time.Unix(1000, 0)
	var r refusals
	tick := func(d time.Duration) { clock = clock.Add(d) }

	// While the command runs, refusals are a sandbox still starting: never stopped.
	for range 5 {
		if r.stopped(refuse, false, clock) {
			t.Fatal("stopped while the command still runs")
		}
		tick(refusalGrace)
	}
	// Once it returned, the grace starts at the first refusal counted.
	if r.stopped(refuse, true, clock) {
		t.Fatal("stopped at the first refusal after the command returned")
	}
	tick(refusalGrace - time.Millisecond)
	if r.stopped(refuse, true, clock) {
		t.Fatal("stopped before the grace passed")
	}
	// An answer starts the count again.
	if r.stopped(nil, true, clock) {
		t.Fatal("stopped on an answer")
	}
	tick(time.Millisecond)
	if r.stopped(refuse, true, clock) {
		t.Fatal("an answer did not reset the count")
	}
	tick(refusalGrace)
	if !r.stopped(refuse, true, clock) {
		t.Fatal("not stopped after refusing for the whole grace")
	}
}
