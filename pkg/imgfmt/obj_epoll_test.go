package imgfmt

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// epollProcess returns a process with an eventfd on fd 5, an epoll instance on fd 6 watching it
// twice (as 5 and as 9) and an outer epoll instance on fd 7 watching fd 6.
func epollProcess() *Process {
	p := minimalProcess()
	p.Files = append(p.Files,
		File{FD: 5, Kind: FileEventFD, StatusFlags: 2, Offset: -1, Desc: "anon_inode:[eventfd]"},
		File{FD: 6, Kind: FileOther, StatusFlags: 2, Offset: -1, Desc: "anon_inode:[eventpoll]"},
		File{FD: 7, Kind: FileOther, StatusFlags: 2 | 0o4000, Offset: -1, Desc: "anon_inode:[eventpoll]"})
	p.Objects = []Object{
		{ID: 1, FDs: []ObjectFD{{FD: 6}}, Body: &EpollObject{Dropped: 1, Interests: []EpollInterest{
			{FD: 5, Num: 5, Events: 1 | 1<<31, Data: 0x1111000000000005},
			{FD: 5, Num: 9, Events: 4 | 1<<30, Data: 9},
		}}},
		{ID: 2, FDs: []ObjectFD{{FD: 7}}, Body: &EpollObject{Interests: []EpollInterest{{FD: 6, Num: 6, Events: 1, Data: 6}}}},
	}
	return p
}

func TestEpollObjectRoundTrip(t *testing.T) {
	p := epollProcess()
	q, _ := objectRoundTrip(t, p)
	s := viewOf(q)
	want := "2 interests [fd 5 events 0x80000001 data 0x1111000000000005] [fd 5 as 9 events 0x40000004 data 0x9], 1 dropped (file in no fd)"
	if len(s.Objects) != 2 || s.Objects[0].Kind != "epoll" || s.Objects[0].Detail != want {
		t.Errorf("summary objects %+v, want detail %q", s.Objects, want)
	}
}

func TestEpollObjectChecks(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		mod        func(p *Process)
	}{
		{"missing fd", "fd 8 is not an fd of the process", func(p *Process) { p.Objects[1].Body.(*EpollObject).Interests[0].FD = 8 }},
		{"itself", "watches itself", func(p *Process) { p.Objects[1].Body.(*EpollObject).Interests[0].FD = 7 }},
		{"num", "fd number -1 out of range", func(p *Process) { p.Objects[1].Body.(*EpollObject).Interests[0].Num = -1 }},
		{"order", "is not above the previous one", func(p *Process) {
			in := p.Objects[0].Body.(*EpollObject).Interests
			in[0], in[1] = in[1], in[0]
		}},
		{"duplicate", "is not above the previous one", func(p *Process) { p.Objects[0].Body.(*EpollObject).Interests[1].Num = 5 }},
		{"not epoll fd", "fd 6 is not an epoll instance", func(p *Process) { p.Files[len(p.Files)-2].Kind = FileFIFO }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := epollProcess()
			tc.mod(p)
			var fe *FormatError
			err := Encode(new(bytes.Buffer), p)
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "epoll") {
				t.Fatalf("Encode: %v, want a FormatError containing %q", err, tc.want)
			}
		})
	}
}

func TestEpollObjectDecodeErrors(t *testing.T) {
	p := epollProcess()
	p.Objects = p.Objects[1:]
	p.Objects[0].ID = 1
	img := encodeToBytes(t, p)
	at := lastOwnNoteDesc(img)
	body := objectFixedSize + objectFDSize
	for _, tc := range []struct {
		name string
		off  int
		val  byte
		want string
	}{
		{"count", body, 2, "2 interests do not fit"},
		{"count huge", body + 3, 0x40, "do not fit"},
		{"reserved", body + 8 + 12, 1, "reserved"},
		{"fd", body + 8, 3, "fd 3 is not an fd of the process"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantByteDecodeError(t, img, at+tc.off, tc.val, tc.want)
		})
	}
}
