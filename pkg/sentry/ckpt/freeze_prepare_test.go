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
