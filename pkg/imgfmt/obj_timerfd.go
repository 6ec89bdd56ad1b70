package imgfmt

import "fmt"

// TimerFDObject is a timerfd (ObjTimerFD). Body layout: u32 clock (0 CLOCK_REALTIME, 1
// CLOCK_MONOTONIC), u32 flags (bit 0: armed), i64 value (ns), i64 interval (ns), u64 expirations.
type TimerFDObject struct {
	// Clock is the Linux clock id: ClockRealtime or ClockMonotonic.
	Clock uint32
	// Armed is set if the timer was running at the freeze.
	Armed bool
	// Value is when the armed timer expires next: for CLOCK_REALTIME the absolute time in ns since
	// the epoch (wall time goes on while frozen), for CLOCK_MONOTONIC the ns that were left at the
	// freeze (each sandbox has its own monotonic clock; the timer is re-armed relative to the thaw).
	// 0 when not armed.
	Value int64
	// Interval is the period in ns (0: one-shot).
	Interval int64
	// Expirations counts the expirations not yet read at the freeze.
	Expirations uint64
}

// Clock ids a timerfd can use in an image.
const (
	ClockRealtime  = 0
	ClockMonotonic = 1
)

const timerFDArmed = 1 << 0

// Kind implements ObjectBody.
func (*TimerFDObject) Kind() ObjectKind { return ObjTimerFD }

func (e *TimerFDObject) encode(w *wbuf) {
	w.u32(e.Clock)
	var flags uint32
	if e.Armed {
		flags |= timerFDArmed
	}
	w.u32(flags)
	w.i64(e.Value)
	w.i64(e.Interval)
	w.u64(e.Expirations)
}

func decodeTimerFD(r *rbuf) ObjectBody {
	e := &TimerFDObject{Clock: r.u32()}
	flags := r.u32()
	if r.err == nil && flags&^timerFDArmed != 0 {
		r.off -= 4
		r.fail("timerfd: unknown flags %#x", flags)
	}
	e.Armed = flags&timerFDArmed != 0
	e.Value = r.i64()
	e.Interval = r.i64()
	e.Expirations = r.u64()
	return e
}

func (e *TimerFDObject) describe() string {
	clock := "realtime"
	if e.Clock == ClockMonotonic {
		clock = "monotonic"
	}
	state := "disarmed"
	switch {
	case e.Armed && e.Clock == ClockRealtime:
		state = fmt.Sprintf("expires at %d ns", e.Value)
	case e.Armed:
		state = fmt.Sprintf("expires in %d ns", e.Value)
	}
	return fmt.Sprintf("%s, %s, interval %d ns, %d expirations pending", clock, state, e.Interval, e.Expirations)
}

func (e *TimerFDObject) check(p *Process, o *Object) string {
	switch {
	case e.Clock != ClockRealtime && e.Clock != ClockMonotonic:
		return fmt.Sprintf("unknown clock %d", e.Clock)
	case e.Value < 0 || e.Interval < 0:
		return "negative time"
	case !e.Armed && (e.Value != 0 || e.Interval != 0):
		return "a disarmed timer has no value or interval"
	case o.Descs() > 1:
		return "a timerfd has one open file description"
	}
	for _, f := range o.FDs {
		if i := p.fileIndex(f.FD); i >= 0 && p.Files[i].Kind != FileOther {
			return fmt.Sprintf("fd %d is not a timerfd", f.FD)
		}
	}
	return ""
}
