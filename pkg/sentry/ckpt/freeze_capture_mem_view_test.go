package ckpt

import "testing"

func TestViewBufs(t *testing.T) {
	b := getViewBuf(100)
	if len(b) != 100 || cap(b) < viewBufSize {
		t.Fatalf("getViewBuf(100): len %d cap %d, want len 100 and cap >= %d", len(b), cap(b), viewBufSize)
	}
	b[0] = 1
	putViewBuf(b)
	// A pool may drop what it holds at any time, so only the shape of what comes back is checked.
	for _, n := range []int{viewBufSize, 4096, 0} {
		if got := getViewBuf(n); len(got) != n || cap(got) < viewBufSize {
			t.Errorf("getViewBuf(%d): len %d cap %d", n, len(got), cap(got))
		}
	}
	if got := getViewBuf(2 * viewBufSize); len(got) != 2*viewBufSize {
		t.Errorf("getViewBuf(2 MiB): len %d", len(got))
	}
	putViewBuf(make([]byte, 10)) // too small to keep: must not come back as a short buffer
	if got := getViewBuf(viewBufSize); len(got) != viewBufSize {
		t.Errorf("getViewBuf after a small put: len %d", len(got))
	}
}
