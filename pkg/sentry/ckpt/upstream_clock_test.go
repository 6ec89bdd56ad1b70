package ckpt

import (
	"reflect"
	"slices"
	"testing"

	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// timekeeperMethods are the exported methods of *kernel.Timekeeper at the pinned gVisor. None sets
// the monotonic clock's offset: upstream's restore sets it once, inside SetClocks, from the saved
// state, so a container restored from ELF images into a new sandbox starts its CLOCK_MONOTONIC
// near 0 (docs/upstream-gaps.md, "CLOCK_MONOTONIC of a restored container").
var timekeeperMethods = []string{
	"AfterFunc", "BootTime", "Destroy", "GetTime", "Now", "NowMonotonic", "Pause", "Resume",
	"SetClocks", "StateFields", "StateLoad", "StateSave", "StateTypeName",
}

// TestTimekeeperHasNoOffsetSetter fails when a gVisor bump changes Timekeeper's exported methods:
// if one can now move the monotonic clock, the tree restore should use it to continue the
// checkpoint's clock; otherwise update the list.
func TestTimekeeperHasNoOffsetSetter(t *testing.T) {
	typ := reflect.TypeOf(&kernel.Timekeeper{})
	var got []string
	for i := 0; i < typ.NumMethod(); i++ {
		got = append(got, typ.Method(i).Name)
	}
	slices.Sort(got)
	if !slices.Equal(got, timekeeperMethods) {
		t.Fatalf("*kernel.Timekeeper's exported methods changed:\n got %q\nwant %q\nIf one sets the monotonic clock, make the tree restore continue the checkpoint's clock (docs/upstream-gaps.md).", got, timekeeperMethods)
	}
}
