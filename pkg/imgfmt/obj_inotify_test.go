package imgfmt

import (
	"strings"
	"testing"
)

// inotifyProcess returns a process whose fd 9 is an inotify instance with two watches and a gap.
func inotifyProcess() *Process {
	p := objectProcess()
	p.Files = append(p.Files, File{FD: 9, Kind: FileOther, StatusFlags: 0o4002, Offset: -1, Desc: "anon_inode:[inotifyfd:7]"})
	p.Objects = append(p.Objects, Object{ID: 2, Key: 3, FDs: []ObjectFD{{FD: 9}}, Body: &InotifyObject{
		LastWD: 4, Dropped: 1,
		Watches: []InotifyWatch{{WD: 1, Mask: 0x100, Path: "/data"}, {WD: 3, Mask: 0x80000002, Path: "/data/f"}},
	}})
	return p
}

func TestInotifyCodec(t *testing.T) {
	q, _ := objectRoundTrip(t, inotifyProcess())
	d := viewOf(q).Objects[1].Detail
	for _, want := range []string{"2 watches, last wd 4", "1 without a path", "[wd 1 mask 0x100 /data]", "[wd 3 mask 0x80000002 /data/f]"} {
		if !strings.Contains(d, want) {
			t.Errorf("summary %q lacks %q", d, want)
		}
	}
	empty := inotifyProcess()
	empty.Objects[1].Body = &InotifyObject{}
	objectRoundTrip(t, empty)
}

func TestInotifyChecks(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		mod        func(o *InotifyObject)
	}{
		{"wd zero", "wd 0 outside", func(o *InotifyObject) { o.Watches[0].WD = 0 }},
		{"wd above last", "wd 5 outside", func(o *InotifyObject) { o.Watches[1].WD = 5 }},
		{"order", "not above the previous", func(o *InotifyObject) { o.Watches[1].WD = 1 }},
		{"mask", "empty mask", func(o *InotifyObject) { o.Watches[0].Mask = 0 }},
		{"relative", "not absolute", func(o *InotifyObject) { o.Watches[0].Path = "data" }},
		{"last", "last wd -1", func(o *InotifyObject) { o.LastWD = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := inotifyProcess()
			tc.mod(p.Objects[1].Body.(*InotifyObject))
			wantEncodeError(t, p, tc.want)
		})
	}
	img := encodeToBytes(t, inotifyProcess())
	body := lastOwnNoteDesc(img) + objectFixedSize + objectFDSize
	for _, tc := range []struct {
		off  int
		val  byte
		want string
	}{
		{0, 200, "200 watches and 0 events do not fit"},
		{3, 0x80, "events do not fit"},
		{12, 1, "events do not fit"},
		{16 + 8, 0xff, "descriptor too short"},
		{16 + 8 + 3, 0x10, "exceeds"},
		{16 + 12, 0, "NUL"},
	} {
		wantByteDecodeError(t, img, body+tc.off, tc.val, tc.want)
	}
}

// inotifyWithEvents is inotifyProcess with five queued events.
func inotifyWithEvents() *Process {
	p := inotifyProcess()
	p.Objects[1].Body.(*InotifyObject).Events = []InotifyEvent{
		{WD: 1, Mask: 0x100, Name: "new"}, {WD: 1, Mask: 0x40, Cookie: 7, Name: "a"}, {WD: 1, Mask: 0x80, Cookie: 7, Name: "b"},
		{WD: 3, Mask: 2}, {WD: -1, Mask: 0x4000},
	}
	return p
}

// TestInotifyEvents: queued events round-trip in order (an image without events is the layout
// of images written before events were recorded: inotifyProcess), and bad ones are refused.
func TestInotifyEvents(t *testing.T) {
	withEvents := inotifyWithEvents
	q, _ := objectRoundTrip(t, withEvents())
	if got := q.Objects[1].Body.(*InotifyObject).Events; len(got) != 5 || got[2] != (InotifyEvent{WD: 1, Mask: 0x80, Cookie: 7, Name: "b"}) || got[4].WD != -1 {
		t.Errorf("events %+v", got)
	}
	for _, tc := range []struct {
		name, want string
		mod        func(e *InotifyEvent)
	}{
		{"wd zero", "event 0: wd 0", func(e *InotifyEvent) { e.WD = 0 }},
		{"wd above", "event 0: wd 5", func(e *InotifyEvent) { e.WD = 5 }},
		{"mask", "event 0: empty mask", func(e *InotifyEvent) { e.Mask = 0 }},
		{"slash", "event 0: name", func(e *InotifyEvent) { e.Name = "a/b" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := withEvents()
			tc.mod(&p.Objects[1].Body.(*InotifyObject).Events[0])
			wantEncodeError(t, p, tc.want)
		})
	}
	b := encodeToBytes(t, withEvents())
	body := lastOwnNoteDesc(b) + objectFixedSize + objectFDSize
	b[body+12] = 200
	wantDecodeError(t, b, "events do not fit")
}
