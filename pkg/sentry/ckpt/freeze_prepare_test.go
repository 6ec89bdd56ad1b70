package ckpt

import (
	"runtime"
	"testing"
)

func TestCollectBesideCollects(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	ran := false
	collectBeside(func() { ran = true })
	runtime.ReadMemStats(&after)
	if !ran {
		t.Error("collectBeside did not run its function")
	}
	if after.NumGC <= before.NumGC {
		t.Errorf("no garbage collection: NumGC %d before, %d after", before.NumGC, after.NumGC)
	}
}

func TestGCDueSoon(t *testing.T) {
	// The goal is never more than a few GiB away in a test binary, and always less than 1<<62.
	if !gcDueSoon(1 << 62) {
		t.Error("gcDueSoon(huge growth) = false: the goal is not within 2^62 bytes?")
	}
	runtime.GC() // the goal is now at least the minimum heap, above what is in use
	if gcDueSoon(0) {
		t.Error("gcDueSoon(0) right after a collection = true: the heap is at its goal?")
	}
}
