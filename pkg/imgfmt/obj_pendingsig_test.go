package imgfmt

import (
	"encoding/binary"
	"testing"
)

// sigInfo returns a siginfo with signo, code and a sigqueue value.
func sigInfo(signo, code int32, value uint64) [SigInfoSize]byte {
	var b [SigInfoSize]byte
	binary.LittleEndian.PutUint32(b[0:], uint32(signo))
	binary.LittleEndian.PutUint32(b[8:], uint32(code))
	binary.LittleEndian.PutUint64(b[24:], value)
	return b
}

// pendingProcess returns a process with SIGUSR1 pending on the group and two instances of
// signal 40 on its first thread, each with its exact siginfo.
func pendingProcess() *Process {
	p := objectProcess()
	p.Signals.Pending = 1 << (10 - 1)
	p.Threads[0].SigPending = 1<<(10-1) | 1<<(40-1)
	p.Objects = append(p.Objects, Object{ID: 2, Body: &PendingSignalsObject{Infos: [][SigInfoSize]byte{
		sigInfo(10, 0, 0), sigInfo(40, -1, 7), sigInfo(40, -1, 8)}}})
	return p
}

func TestPendingSignalsCodec(t *testing.T) {
	q, _ := objectRoundTrip(t, pendingProcess())
	d := viewOf(q).Objects[1].Detail
	if want := "3 siginfos: [sig 10 code 0] [sig 40 code -1] [sig 40 code -1]"; d != want {
		t.Errorf("summary %q, want %q", d, want)
	}
}

func TestPendingSignalsChecks(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		mod        func(p *Process, o *PendingSignalsObject)
	}{
		{"signo", "signal 0", func(p *Process, o *PendingSignalsObject) { o.Infos[0] = sigInfo(0, 0, 0) }},
		{"sigkill", "signal 9", func(p *Process, o *PendingSignalsObject) { o.Infos[0] = sigInfo(9, 0, 0) }},
		{"not pending", "signal 41 is not pending", func(p *Process, o *PendingSignalsObject) { o.Infos[1] = sigInfo(41, 0, 0) }},
		{"fds", "have no fds", func(p *Process, o *PendingSignalsObject) {
			p.Files = append(p.Files, File{FD: 9, Kind: FileOther, Offset: -1, Desc: "x"})
			p.Objects[1].FDs = []ObjectFD{{FD: 9}}
		}},
		{"two", "more than one", func(p *Process, o *PendingSignalsObject) {
			p.Objects = append(p.Objects, Object{ID: 3, Body: &PendingSignalsObject{}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pendingProcess()
			tc.mod(p, p.Objects[1].Body.(*PendingSignalsObject))
			wantEncodeError(t, p, tc.want)
		})
	}
	img := encodeToBytes(t, pendingProcess())
	body := lastOwnNoteDesc(img) + objectFixedSize
	for _, tc := range []struct {
		off  int
		val  byte
		want string
	}{{0, 4, "do not fill"}, {0, 2, "do not fill"}, {3, 0x80, "do not fill"}, {4, 1, "do not fill"}, {4, 2, "flags 0x2"}, {8, 0, "signal 0"}} {
		wantByteDecodeError(t, img, body+tc.off, tc.val, tc.want)
	}
}

// timerInfo returns an SI_TIMER siginfo of timer id with an overrun and a value.
func timerInfo(signo, id, overrun int32, value uint64) [SigInfoSize]byte {
	b := sigInfo(signo, siTimer, value)
	binary.LittleEndian.PutUint32(b[16:], uint32(id))
	binary.LittleEndian.PutUint32(b[20:], uint32(overrun))
	return b
}

// queuedProcess returns a process of two threads (TIDs 8 and 9) with the queue layout: SIGUSR1
// on the group, signal 40 twice on thread 9 (tgkill'd), and the signals of two timers: timer 3
// (SIGEV_SIGNAL, signal 41) linked with 5 overruns on the group, timer 4 (SIGEV_THREAD_ID to
// thread 9, signal 42) orphaned on thread 9.
func queuedProcess() *Process {
	p := objectProcess()
	th := p.Threads[0]
	th.TID = 9
	th.SigPending = 1<<(10-1) | 1<<(40-1) | 1<<(42-1)
	p.Threads = append(p.Threads, th)
	p.Threads[0].SigPending = 1<<(10-1) | 1<<(41-1)
	p.Signals.Pending = 1<<(10-1) | 1<<(41-1)
	p.Objects = append(p.Objects,
		Object{ID: 2, Body: &PosixTimerObject{ID: 3, Notify: sigevSignal, Signo: 41, Value: 77}},
		Object{ID: 3, Body: &PosixTimerObject{ID: 4, Notify: sigevThreadID, Signo: 42, TID: 9}},
		Object{ID: 4, Body: &PendingSignalsObject{
			Infos:  [][SigInfoSize]byte{sigInfo(10, 0, 0), sigInfo(40, -6, 0), sigInfo(40, -1, 8), timerInfo(41, 3, 5, 77), timerInfo(42, 4, 0, 0)},
			Queues: []PendingQueue{{}, {TID: 9}, {TID: 9}, {Flags: PendingTimer}, {TID: 9, Flags: PendingTimer | PendingOrphan}},
		}})
	return p
}

func TestPendingSignalsQueueCodec(t *testing.T) {
	q, _ := objectRoundTrip(t, queuedProcess())
	o := q.Objects[3].Body.(*PendingSignalsObject)
	if o.Queues[1].TID != 9 || o.TimerID(3) != 3 || o.Overrun(3) != 5 {
		t.Errorf("decoded %+v", o.Queues)
	}
}

func TestPendingSignalsQueueChecks(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		mod        func(p *Process, o *PendingSignalsObject)
	}{
		{"no thread", "thread 10, which is not", func(p *Process, o *PendingSignalsObject) { o.Queues[1].TID = 10 }},
		{"not on thread", "not pending on thread 8", func(p *Process, o *PendingSignalsObject) { o.Queues[1].TID = 8 }},
		{"not on group", "not pending on the thread group", func(p *Process, o *PendingSignalsObject) { o.Queues[1].TID = 0 }},
		{"flags", "entry flags 0x4", func(p *Process, o *PendingSignalsObject) { o.Queues[0].Flags = 4 }},
		{"orphan alone", "entry flags 0x2", func(p *Process, o *PendingSignalsObject) { o.Queues[4].Flags = PendingOrphan }},
		{"not SI_TIMER", "si_code -1", func(p *Process, o *PendingSignalsObject) { o.Queues[2].Flags = PendingTimer }},
		{"no timer", "no POSIX timer 6", func(p *Process, o *PendingSignalsObject) { o.Infos[3] = timerInfo(41, 6, 0, 0) }},
		{"other signal", "timer 4 sends signal 42, not 41", func(p *Process, o *PendingSignalsObject) { o.Infos[3] = timerInfo(41, 4, 0, 0) }},
		{"other queue", "timer 3 does not queue", func(p *Process, o *PendingSignalsObject) {
			p.Threads[1].SigPending |= 1 << (41 - 1)
			o.Queues[3].TID = 9
		}},
		{"twice", "two signals linked to timer 3", func(p *Process, o *PendingSignalsObject) {
			o.Infos = append(o.Infos, o.Infos[3])
			o.Queues = append(o.Queues, o.Queues[3])
		}},
		{"headers", "differ in number", func(p *Process, o *PendingSignalsObject) { o.Queues = o.Queues[:4] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := queuedProcess()
			tc.mod(p, p.Objects[3].Body.(*PendingSignalsObject))
			wantEncodeError(t, p, tc.want)
		})
	}
	img := encodeToBytes(t, queuedProcess())
	body := lastOwnNoteDesc(img) + objectFixedSize
	for _, tc := range []struct {
		off  int
		val  byte
		want string
	}{{0, 6, "do not fill"}, {4, 3, "flags 0x3"}, {8 + 12, 1, "reserved"}, {8, 7, "thread 7, which is not"}} {
		wantByteDecodeError(t, img, body+tc.off, tc.val, tc.want)
	}
}
