package imgfmt

import (
	"encoding/binary"
	"fmt"
)

// PendingSignalsObject holds the exact siginfo of pending signals (ObjPendingSignals;
// process-wide, no fds, at most one per image); docs/notes-thaw.md "Pending signals". Body
// layout: 0 count u32, 4 flags u32, then count entries. With flags 0 (the first layout) each entry
// is a 128-byte Linux siginfo_t (0 si_signo i32, 4 si_errno i32, 8 si_code i32, then the union as
// the kernel lays it out) of a signal pending on the thread group or on the image's first thread,
// in the order they were queued per signal number; the group's set in the signals note says which.
// With flags bit 0 (the queue layout) each entry is a 16-byte queue header (0 tid i32: 0 for the
// thread group's queue, else the TID of the thread whose queue holds it; 4 entry flags u32
// (PendingTimer, PendingOrphan); 8 reserved u64) followed by the siginfo, every queue of the
// process in queue order. A thaw sends these instead of a minimal siginfo for the signals they
// cover.
type PendingSignalsObject struct {
	Infos [][SigInfoSize]byte
	// Queues is nil in the first layout; in the queue layout it has one entry per info.
	Queues []PendingQueue
}

// PendingQueue says where one pending siginfo of the queue layout is queued.
type PendingQueue struct {
	TID   int32  // 0: the thread group's queue; else a thread's TID in the image.
	Flags uint32 // PendingTimer, PendingOrphan.
}

// Entry flags of the queue layout.
const (
	// PendingTimer: the signal of the POSIX timer si_timerid (an SI_TIMER siginfo), still linked
	// to it: further expirations count in its si_overrun instead of queueing another signal.
	PendingTimer uint32 = 1 << 0
	// PendingOrphan (with PendingTimer): the timer was set again after the signal was queued, so
	// its overruns no longer count (the siginfo's si_overrun stays as it is).
	PendingOrphan uint32 = 1 << 1
)

// SigInfoSize is the size of a siginfo_t.
const SigInfoSize = 128

// pendingQueueLayout is the flags bit of the queue layout.
const pendingQueueLayout = 1

// siTimer is si_code SI_TIMER.
const siTimer = -2

// maxPendingSignals bounds the infos of a first-layout image: 64 signals × 32 queued instances
// (gVisor's cap for a real-time signal) × 2 queues (thread and group). maxPendingQueued bounds
// the queue layout, whose queues are the group's and every thread's (check bounds it by the
// image's threads).
const (
	maxPendingSignals = 64 * 32 * 2
	maxPendingQueued  = 1 << 20
)

// Kind implements ObjectBody.
func (*PendingSignalsObject) Kind() ObjectKind { return ObjPendingSignals }

// Signo returns the signal number of info.
func (o *PendingSignalsObject) Signo(i int) int32 {
	return int32(binary.LittleEndian.Uint32(o.Infos[i][0:4]))
}

// code returns si_code of info i.
func (o *PendingSignalsObject) code(i int) int32 {
	return int32(binary.LittleEndian.Uint32(o.Infos[i][8:12]))
}

// TimerID returns si_timerid of info i (meaningful for an SI_TIMER siginfo).
func (o *PendingSignalsObject) TimerID(i int) int32 {
	return int32(binary.LittleEndian.Uint32(o.Infos[i][16:20]))
}

// Overrun returns si_overrun of info i (meaningful for an SI_TIMER siginfo).
func (o *PendingSignalsObject) Overrun(i int) int32 {
	return int32(binary.LittleEndian.Uint32(o.Infos[i][20:24]))
}

func (o *PendingSignalsObject) encode(w *wbuf) {
	w.u32(uint32(len(o.Infos)))
	if o.Queues == nil {
		w.u32(0)
		for i := range o.Infos {
			w.bytes(o.Infos[i][:])
		}
		return
	}
	w.u32(pendingQueueLayout)
	for i := range o.Infos {
		w.i32(o.Queues[i].TID)
		w.u32(o.Queues[i].Flags)
		w.u64(0)
		w.bytes(o.Infos[i][:])
	}
}

func decodePendingSignals(r *rbuf) ObjectBody {
	n := r.u32()
	flags := r.u32()
	o := &PendingSignalsObject{}
	entry, max := int64(SigInfoSize), int64(maxPendingSignals)
	switch flags {
	case 0:
	case pendingQueueLayout:
		entry, max = 16+SigInfoSize, maxPendingQueued
	default:
		r.fail("pending signals: flags %#x", flags)
	}
	if r.err == nil && (int64(n) > max || int64(n)*entry != int64(len(r.b)-r.off)) {
		r.fail("pending signals: %d siginfos do not fill the note", n)
	}
	if r.err != nil {
		return o
	}
	if flags == pendingQueueLayout {
		o.Queues = make([]PendingQueue, n)
	}
	if n == 0 {
		return o
	}
	o.Infos = make([][SigInfoSize]byte, n)
	for i := range o.Infos {
		if o.Queues != nil {
			o.Queues[i].TID = r.i32()
			o.Queues[i].Flags = r.u32()
			r.zero(8, "reserved")
		}
		copy(o.Infos[i][:], r.take(SigInfoSize))
	}
	return o
}

func (o *PendingSignalsObject) describe() string {
	s := fmt.Sprintf("%d siginfos:", len(o.Infos))
	for i := range o.Infos {
		s += fmt.Sprintf(" [sig %d code %d", o.Signo(i), o.code(i))
		if o.Queues != nil {
			if q := o.Queues[i]; q.TID != 0 {
				s += fmt.Sprintf(" thread %d", q.TID)
			}
			if q := o.Queues[i]; q.Flags&PendingTimer != 0 {
				s += fmt.Sprintf(" timer %d overrun %d", o.TimerID(i), o.Overrun(i))
				if q.Flags&PendingOrphan != 0 {
					s += " orphan"
				}
			}
		}
		s += "]"
	}
	return s
}

func (o *PendingSignalsObject) check(p *Process, obj *Object) string {
	if len(obj.FDs) != 0 {
		return "pending signals have no fds"
	}
	for i := range p.Objects {
		if p.Objects[i].Kind() == ObjPendingSignals && &p.Objects[i] != obj {
			return "more than one pending-signals object"
		}
	}
	if o.Queues != nil && len(o.Queues) != len(o.Infos) {
		return "pending signals: queue headers and siginfos differ in number"
	}
	if o.Queues != nil && len(o.Infos) > (len(p.Threads)+1)*64*32 {
		return fmt.Sprintf("%d pending siginfos for %d threads", len(o.Infos), len(p.Threads))
	}
	linked := map[int32]bool{}
	for i := range o.Infos {
		s := o.Signo(i)
		if s < 1 || s > 64 || s == 9 || s == 19 {
			return fmt.Sprintf("siginfo %d: signal %d", i, s)
		}
		if msg := o.checkQueue(p, i, linked); msg != "" {
			return fmt.Sprintf("siginfo %d: %s", i, msg)
		}
	}
	return ""
}

// checkQueue checks that info i's signal is pending on its queue and that a timer link names a
// timer of the image that sends this signal there, at most once per timer.
func (o *PendingSignalsObject) checkQueue(p *Process, i int, linked map[int32]bool) string {
	s := o.Signo(i)
	bit := uint64(1) << (s - 1)
	if o.Queues == nil {
		var pending uint64
		if len(p.Threads) > 0 {
			pending = p.Signals.Pending | p.Threads[0].SigPending
		}
		if pending&bit == 0 {
			return fmt.Sprintf("signal %d is not pending", s)
		}
		return ""
	}
	q := o.Queues[i]
	if q.TID == 0 {
		if p.Signals.Pending&bit == 0 {
			return fmt.Sprintf("signal %d is not pending on the thread group", s)
		}
	} else {
		th := p.threadByTID(q.TID)
		if th == nil {
			return fmt.Sprintf("queue of thread %d, which is not in the image", q.TID)
		}
		if th.SigPending&bit == 0 {
			return fmt.Sprintf("signal %d is not pending on thread %d", s, q.TID)
		}
	}
	if q.Flags&^(PendingTimer|PendingOrphan) != 0 || q.Flags == PendingOrphan {
		return fmt.Sprintf("entry flags %#x", q.Flags)
	}
	if q.Flags&PendingTimer == 0 {
		return ""
	}
	id := o.TimerID(i)
	if o.code(i) != siTimer {
		return fmt.Sprintf("a timer's signal with si_code %d", o.code(i))
	}
	if linked[id] {
		return fmt.Sprintf("two signals linked to timer %d", id)
	}
	linked[id] = true
	for j := range p.Objects {
		pt, ok := p.Objects[j].Body.(*PosixTimerObject)
		if !ok || pt.ID != id {
			continue
		}
		switch {
		case pt.Signo != s:
			return fmt.Sprintf("timer %d sends signal %d, not %d", id, pt.Signo, s)
		case pt.Notify == sigevSignal && q.TID == 0, pt.Notify == sigevThreadID && q.TID == pt.TID:
			return ""
		}
		return fmt.Sprintf("timer %d does not queue its signal on this queue", id)
	}
	return fmt.Sprintf("no POSIX timer %d in the image", id)
}

// threadByTID returns the image's thread with TID tid, or nil.
func (p *Process) threadByTID(tid int32) *Thread {
	for i := range p.Threads {
		if p.Threads[i].TID == tid {
			return &p.Threads[i]
		}
	}
	return nil
}
