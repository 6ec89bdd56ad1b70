package imgfmt_test

import (
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/inspect"
)

// TestObjectSummaries: what inspect prints for objects whose codec tests live here.
func TestObjectSummaries(t *testing.T) {
	q, img := imgfmt.ObjectRoundTripForTest(t, imgfmt.QueuedProcessForTest())
	d := inspect.Summarize(q, int64(len(img)), nil).Objects[3].Detail
	want := "5 siginfos: [sig 10 code 0] [sig 40 code -6 thread 9] [sig 40 code -1 thread 9] [sig 41 code -2 timer 3 overrun 5] [sig 42 code -2 thread 9 timer 4 overrun 0 orphan]"
	if d != want {
		t.Errorf("pending signals: summary %q, want %q", d, want)
	}
	q, img = imgfmt.ObjectRoundTripForTest(t, imgfmt.InotifyWithEventsForTest())
	if d := inspect.Summarize(q, int64(len(img)), nil).Objects[1].Detail; !strings.Contains(d, `5 queued events: [wd 1 mask 0x100 cookie 0 "new"]`) {
		t.Errorf("inotify events: summary %q", d)
	}
	q, img = imgfmt.ObjectRoundTripForTest(t, imgfmt.ResetProcessForTest(true))
	if s := inspect.Summarize(q, int64(len(img)), nil); !strings.Contains(s.Objects[0].Detail, "tcp reset 127.0.0.1:40000 -> 127.0.0.1:40001, shut down for writing, 4 bytes unread") {
		t.Errorf("half-closed reset end: summary %q", s.Objects[0].Detail)
	}
}
