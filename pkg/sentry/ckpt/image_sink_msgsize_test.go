package ckpt

import (
	"testing"

	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/usermem"
)

// TestMessageLimit: EMSGSIZE halves the largest write down to minMessageWrite, other errors
// leave it alone, and clip cuts a sequence to the limit.
func TestMessageLimit(t *testing.T) {
	var l messageLimit
	src := usermem.BytesIOSequence(make([]byte, 1<<20))
	if got := l.clip(src).NumBytes(); got != 1<<20 {
		t.Fatalf("no limit: clip gave %d bytes, want all", got)
	}
	if l.shrink(linuxerr.ErrWouldBlock, 1<<20) || l != 0 {
		t.Fatalf("EWOULDBLOCK changed the limit to %d", l)
	}
	sizes := []int64{}
	for size := int64(1 << 20); l.shrink(linuxerr.EMSGSIZE, size); size = l.clip(src).NumBytes() {
		sizes = append(sizes, int64(l))
	}
	want := []int64{512 << 10, 256 << 10, 128 << 10, 64 << 10, 32 << 10, 16 << 10, 8 << 10, 4 << 10}
	if len(sizes) != len(want) {
		t.Fatalf("limits %v, want %v", sizes, want)
	}
	for i := range want {
		if sizes[i] != want[i] {
			t.Fatalf("limits %v, want %v", sizes, want)
		}
	}
	if got := l.clip(src).NumBytes(); got != minMessageWrite {
		t.Errorf("clip at the floor gave %d bytes, want %d", got, minMessageWrite)
	}
	var odd messageLimit
	if !odd.shrink(linuxerr.EMSGSIZE, 6000) || odd != minMessageWrite {
		t.Errorf("6000 bytes refused: limit %d, want %d", odd, minMessageWrite)
	}
}
