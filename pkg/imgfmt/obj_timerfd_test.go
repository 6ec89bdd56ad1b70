package imgfmt

import (
	"testing"
)

// timerProcess returns a process with a timerfd on fd 5 (monotonic, armed, periodic, 3 pending)
// and a signalfd on fd 6.
func timerProcess() *Process {
	p := minimalProcess()
	p.Files = append(p.Files,
		File{FD: 5, Kind: FileOther, StatusFlags: 2, Offset: -1, Desc: "anon_inode:[timerfd]"},
		File{FD: 6, Kind: FileOther, StatusFlags: 2, Offset: -1, Desc: "anon_inode:[signalfd]"})
	p.Objects = []Object{
		{ID: 1, FDs: []ObjectFD{{FD: 5}}, Body: &TimerFDObject{Clock: ClockMonotonic, Armed: true, Value: 1500, Interval: 2500, Expirations: 3}},
		{ID: 2, FDs: []ObjectFD{{FD: 6}}, Body: &SignalFDObject{Mask: 1<<9 | 1<<11}},
	}
	return p
}

func TestTimerFDObjectRoundTrip(t *testing.T) {
	p := timerProcess()
	q, _ := objectRoundTrip(t, p)
	s := viewOf(q)
	if len(s.Objects) != 2 || s.Objects[0].Detail != "monotonic, expires in 1500 ns, interval 2500 ns, 3 expirations pending" ||
		s.Objects[1].Kind != "signalfd" || s.Objects[1].Detail != "mask 0xa00" {
		t.Errorf("summary objects %+v", s.Objects)
	}
}

func TestTimerFDObjectChecks(t *testing.T) {
	timer := func(p *Process) *TimerFDObject { return p.Objects[0].Body.(*TimerFDObject) }
	for _, tc := range []struct {
		name, want string
		mod        func(p *Process)
	}{
		{"clock", "unknown clock 7", func(p *Process) { timer(p).Clock = 7 }},
		{"negative", "negative time", func(p *Process) { timer(p).Interval = -1 }},
		{"disarmed with value", "a disarmed timer has no value", func(p *Process) { timer(p).Armed = false }},
		{"two descriptions", "one open file description", func(p *Process) {
			p.Files = append(p.Files, File{FD: 7, Kind: FileOther, Offset: -1, Desc: "anon_inode:[timerfd]"})
			p.Objects[0].FDs = append(p.Objects[0].FDs, ObjectFD{FD: 7, Desc: 1})
		}},
		{"not a timerfd", "fd 5 is not a timerfd", func(p *Process) { p.Files[len(p.Files)-2].Kind = FileFIFO }},
		{"not a signalfd", "fd 6 is not a signalfd", func(p *Process) { p.Files[len(p.Files)-1].Kind = FileFIFO }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := timerProcess()
			tc.mod(p)
			wantEncodeError(t, p, tc.want)
		})
	}
}

func TestTimerFDObjectDecodeErrors(t *testing.T) {
	p := timerProcess()
	p.Objects = p.Objects[:1]
	img := encodeToBytes(t, p)
	at := lastOwnNoteDesc(img)
	body := objectFixedSize + objectFDSize
	for _, tc := range []struct {
		name string
		off  int
		val  byte
		want string
	}{
		{"flags", body + 4, 3, "unknown flags"},
		{"clock", body, 4, "unknown clock 4"},
		{"negative value", body + 15, 0x80, "negative time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantByteDecodeError(t, img, at+tc.off, tc.val, tc.want)
		})
	}
}
