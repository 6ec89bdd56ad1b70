package ckpt

import (
	"testing"

	"gvisor.dev/gvisor/pkg/hostarch"
	"gvisor.dev/gvisor/pkg/sentry/mm"
)

func TestThawFramesConsumed(t *testing.T) {
	var m, other mm.MemoryManager
	ar := hostarch.AddrRange{Start: 0x10000, End: 0x10000 + 3*frameSlot}
	slots := []hostarch.Addr{ar.Start + frameSlot, ar.Start + 2*frameSlot}
	before := thawFrames.pending.Load()
	registerThawFrames(&m, ar, slots)
	if got := thawFrames.pending.Load() - before; got != 2 {
		t.Fatalf("pending grew by %d, want 2", got)
	}
	if _, last := consumeThawFrame(&m, ar.Start); last {
		t.Error("an unregistered frame (the caller's own slot) was consumed")
	}
	if _, last := consumeThawFrame(&other, slots[0]); last {
		t.Error("a frame of another address space was consumed")
	}
	if _, last := consumeThawFrame(&m, slots[0]); last {
		t.Error("the first of two frames reported the scratch done")
	}
	if _, last := consumeThawFrame(&m, slots[0]); last {
		t.Error("a frame was consumed twice")
	}
	got, last := consumeThawFrame(&m, slots[1])
	if !last || got != ar {
		t.Errorf("last frame: %v, %t; want %v, true", got, last, ar)
	}
	if p := thawFrames.pending.Load(); p != before {
		t.Errorf("pending = %d after all frames were read, want %d", p, before)
	}
}
