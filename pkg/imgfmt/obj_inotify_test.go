package imgfmt

import (
	"bytes"
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
	body := bytes.LastIndex(img, []byte(OwnerRunscCkpt+"\x00")) + pad4(len(OwnerRunscCkpt)+1) + objectFixedSize + objectFDSize
	for _, tc := range []struct {
		off  int
		val  byte
		want string
	}{
		{0, 200, "watches do not fit"},
		{3, 0x80, "watches do not fit"},
		{12, 1, "reserved"},
		{16 + 8, 0xff, "descriptor too short"},
		{16 + 8 + 3, 0x10, "exceeds"},
		{16 + 12, 0, "NUL"},
	} {
		b := bytes.Clone(img)
		b[body+tc.off] = tc.val
		wantDecodeError(t, b, tc.want)
	}
}
