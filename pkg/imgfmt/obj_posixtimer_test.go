package imgfmt

import (
	"strings"
	"testing"
)

// posixTimerProcess returns a process with three POSIX timers (ids 0, 3, 4) after an eventfd object.
func posixTimerProcess() *Process {
	p := objectProcess()
	tid := p.Threads[0].TID
	p.Objects = append(p.Objects,
		Object{ID: 2, Body: &PosixTimerObject{ID: 0, Clock: TimerMonotonic, Notify: sigevSignal, Signo: 10, Value: 0x1111,
			Remaining: 1_500_000_000, Interval: 500_000_000, Overrun: 2}},
		Object{ID: 3, Body: &PosixTimerObject{ID: 3, Clock: TimerThreadCPU, ClockTID: tid, Notify: sigevThreadID, Signo: 35, TID: tid}},
		Object{ID: 4, Body: &PosixTimerObject{ID: 4, Clock: TimerRealtime, Notify: sigevNone, Remaining: 1}})
	return p
}

func TestPosixTimerRoundTrip(t *testing.T) {
	p := posixTimerProcess()
	q, _ := objectRoundTrip(t, p)
	s := viewOf(q)
	if len(s.Objects) != 4 || s.Objects[1].Kind != "posix-timer" ||
		s.Objects[1].Detail != "timer 0: monotonic, signal 10 value 0x1111, next in 1500000000 ns, interval 500000000 ns, overrun 2" ||
		!strings.Contains(s.Objects[2].Detail, "thread-cpu of thread") || !strings.Contains(s.Objects[3].Detail, "no signal") {
		t.Errorf("summary %+v", s.Objects)
	}
}

func TestPosixTimerChecks(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		mod        func(p *Process, b *PosixTimerObject)
	}{
		{"order", "not above the previous timer's id 0", func(_ *Process, b *PosixTimerObject) { b.ID = 0 }},
		{"negative id", "negative id", func(_ *Process, b *PosixTimerObject) { b.ID = -1 }},
		{"clock", "unknown clock 6", func(_ *Process, b *PosixTimerObject) { b.Clock = 6 }},
		{"clock tid", "a clock tid goes with a thread clock", func(_ *Process, b *PosixTimerObject) { b.Clock = TimerMonotonic }},
		{"clock thread", "clock tid 999 is not a thread", func(_ *Process, b *PosixTimerObject) { b.ClockTID = 999 }},
		{"target", "target tid 999 is not a thread", func(_ *Process, b *PosixTimerObject) { b.TID = 999 }},
		{"target without thread id", "a target tid goes with SIGEV_THREAD_ID", func(_ *Process, b *PosixTimerObject) { b.Notify = sigevSignal }},
		{"signal", "signal 65 out of range", func(_ *Process, b *PosixTimerObject) { b.Signo = 65 }},
		{"none with signal", "SIGEV_NONE with a signal", func(_ *Process, b *PosixTimerObject) { b.Notify = sigevNone }},
		{"notify", "unknown notify 2", func(_ *Process, b *PosixTimerObject) { b.Notify = 2 }},
		{"remaining", "out of range", func(_ *Process, b *PosixTimerObject) { b.Remaining = MaxTimerNanos }},
		{"interval", "out of range", func(_ *Process, b *PosixTimerObject) { b.Interval = -1 }},
		{"overrun", "negative overrun", func(_ *Process, b *PosixTimerObject) { b.Overrun = -1 }},
		{"fds", "a POSIX timer has no fds", func(p *Process, _ *PosixTimerObject) {
			p.Objects[0].FDs = p.Objects[0].FDs[:1]
			p.Objects[2].FDs = []ObjectFD{{FD: 6}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := posixTimerProcess()
			tc.mod(p, p.Objects[2].Body.(*PosixTimerObject))
			wantEncodeError(t, p, tc.want)
		})
	}
}

// TestPosixTimerDecodeErrors patches the encoded last timer (id 4): reserved bytes, a bad clock, a
// huge remaining time must be format errors.
func TestPosixTimerDecodeErrors(t *testing.T) {
	img := encodeToBytes(t, posixTimerProcess())
	body := lastOwnNoteDesc(img) + objectFixedSize
	for _, tc := range []struct {
		name string
		off  int
		val  byte
		want string
	}{
		{"reserved", 53, 1, "reserved"},
		{"clock", 4, 9, "unknown clock 9"},
		{"remaining", 39, 0x7f, "out of range"},
		{"ids", 0, 0, "not above the previous"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantByteDecodeError(t, img, body+tc.off, tc.val, tc.want)
		})
	}
}
