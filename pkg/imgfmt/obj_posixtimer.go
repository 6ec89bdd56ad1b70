package imgfmt

import "fmt"

// TimerClock is the clock a POSIX timer counts (ObjPosixTimer).
type TimerClock uint32

// Timer clocks. CLOCK_BOOTTIME and the _COARSE clocks are CLOCK_MONOTONIC / CLOCK_REALTIME in
// gVisor, and CPUCLOCK_SCHED is CPUCLOCK_PROF.
const (
	TimerRealtime    TimerClock = 0 // CLOCK_REALTIME.
	TimerMonotonic   TimerClock = 1 // CLOCK_MONOTONIC.
	TimerProcessCPU  TimerClock = 2 // CLOCK_PROCESS_CPUTIME_ID: the process's user+system CPU time.
	TimerProcessUser TimerClock = 3 // The process's user CPU time (CPUCLOCK_VIRT).
	TimerThreadCPU   TimerClock = 4 // CLOCK_THREAD_CPUTIME_ID of thread ClockTID.
	TimerThreadUser  TimerClock = 5 // The user CPU time of thread ClockTID.
	timerClockLimit  TimerClock = 6
)

// sigev_notify values a timer may have, and bounds.
const (
	sigevSignal   = 0 // SIGEV_SIGNAL (and SIGEV_THREAD, the same to the kernel).
	sigevNone     = 1 // SIGEV_NONE.
	sigevThreadID = 4 // SIGEV_THREAD_ID.
	// MaxTimerNanos bounds a timer's remaining time and interval (about 146 years), so that a
	// thaw's now + remaining cannot overflow.
	MaxTimerNanos = int64(1) << 62
	maxSignal     = 64
)

// PosixTimerObject is a POSIX interval timer of the process (ObjPosixTimer, no fds). Body layout
// (56 bytes): 0 id i32, 4 clock u32 (TimerClock), 8 clock tid i32 (thread clocks: a thread's TID in
// the image, else 0), 12 notify u32 (0 SIGEV_SIGNAL, 1 SIGEV_NONE, 4 SIGEV_THREAD_ID), 16 signo i32
// (0 for SIGEV_NONE), 20 tid i32 (SIGEV_THREAD_ID: a thread's TID in the image, else 0), 24 value
// u64 (sigev_value), 32 remaining i64 (ns until the next expiry at the freeze, 0 if disarmed), 40
// interval i64 (ns), 48 overrun i32 (timer_getoverrun at the freeze), 52 reserved u32.
type PosixTimerObject struct {
	ID        int32
	Clock     TimerClock
	ClockTID  int32
	Notify    uint32
	Signo     int32
	TID       int32
	Value     uint64
	Remaining int64
	Interval  int64
	Overrun   int32
}

// Kind implements ObjectBody.
func (*PosixTimerObject) Kind() ObjectKind { return ObjPosixTimer }

func (o *PosixTimerObject) encode(w *wbuf) {
	w.i32(o.ID)
	w.u32(uint32(o.Clock))
	w.i32(o.ClockTID)
	w.u32(o.Notify)
	w.i32(o.Signo)
	w.i32(o.TID)
	w.u64(o.Value)
	w.i64(o.Remaining)
	w.i64(o.Interval)
	w.i32(o.Overrun)
	w.u32(0)
}

func decodePosixTimer(r *rbuf) ObjectBody {
	o := &PosixTimerObject{ID: r.i32(), Clock: TimerClock(r.u32()), ClockTID: r.i32(), Notify: r.u32(),
		Signo: r.i32(), TID: r.i32(), Value: r.u64(), Remaining: r.i64(), Interval: r.i64(), Overrun: r.i32()}
	r.zero(4, "reserved")
	return o
}

var timerClockNames = [...]string{"realtime", "monotonic", "process-cpu", "process-user", "thread-cpu", "thread-user"}

func (o *PosixTimerObject) describe() string {
	clock := fmt.Sprintf("clock-%d", o.Clock)
	if o.Clock < timerClockLimit {
		clock = timerClockNames[o.Clock]
	}
	if o.ClockTID != 0 {
		clock += fmt.Sprintf(" of thread %d", o.ClockTID)
	}
	notify := fmt.Sprintf("signal %d value %#x", o.Signo, o.Value)
	switch o.Notify {
	case sigevNone:
		notify = "no signal"
	case sigevThreadID:
		notify += fmt.Sprintf(" to thread %d", o.TID)
	}
	armed := "disarmed"
	if o.Remaining > 0 {
		armed = fmt.Sprintf("next in %d ns, interval %d ns", o.Remaining, o.Interval)
	}
	return fmt.Sprintf("timer %d: %s, %s, %s, overrun %d", o.ID, clock, notify, armed, o.Overrun)
}

// HasThread reports whether tid is a thread of p.
func (p *Process) HasThread(tid int32) bool {
	for i := range p.Threads {
		if p.Threads[i].TID == tid {
			return true
		}
	}
	return false
}

func (o *PosixTimerObject) check(p *Process, obj *Object) string {
	if len(obj.FDs) != 0 {
		return "a POSIX timer has no fds"
	}
	if o.ID < 0 {
		return fmt.Sprintf("negative id %d", o.ID)
	}
	// Ids ascend in image order (the thaw recreates them in that order: ids are allocated
	// upwards). obj.ID is its index plus one (checked before); the scan stops at the previous timer.
	for i := int(obj.ID) - 2; i >= 0 && i < len(p.Objects); i-- {
		if prev, ok := p.Objects[i].Body.(*PosixTimerObject); ok {
			if prev.ID >= o.ID {
				return fmt.Sprintf("id %d is not above the previous timer's id %d", o.ID, prev.ID)
			}
			break
		}
	}
	if o.Clock >= timerClockLimit {
		return fmt.Sprintf("unknown clock %d", o.Clock)
	}
	if thread := o.Clock == TimerThreadCPU || o.Clock == TimerThreadUser; thread != (o.ClockTID != 0) {
		return "a clock tid goes with a thread clock and only there"
	} else if thread && !p.HasThread(o.ClockTID) {
		return fmt.Sprintf("clock tid %d is not a thread of the process", o.ClockTID)
	}
	switch o.Notify {
	case sigevNone:
		if o.Signo != 0 || o.TID != 0 {
			return "SIGEV_NONE with a signal or a thread"
		}
	case sigevSignal, sigevThreadID:
		if o.Signo < 1 || o.Signo > maxSignal {
			return fmt.Sprintf("signal %d out of range", o.Signo)
		}
		if (o.Notify == sigevThreadID) != (o.TID != 0) {
			return "a target tid goes with SIGEV_THREAD_ID and only there"
		}
		if o.TID != 0 && !p.HasThread(o.TID) {
			return fmt.Sprintf("target tid %d is not a thread of the process", o.TID)
		}
	default:
		return fmt.Sprintf("unknown notify %d", o.Notify)
	}
	if o.Remaining < 0 || o.Remaining >= MaxTimerNanos || o.Interval < 0 || o.Interval >= MaxTimerNanos {
		return "remaining time or interval out of range"
	}
	if o.Overrun < 0 {
		return "negative overrun"
	}
	return ""
}
