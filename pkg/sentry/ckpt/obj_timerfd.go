package ckpt

import (
	"fmt"
	"reflect"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/sentry/fsimpl/timerfd"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/ktime"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// timerfd (ObjTimerFD): the clock (TimerFileDescription.Clock) and the setting (GetTime) are
// exported; the count of expirations not yet read is not: it is the stateify field `val` (an
// atomicbitops.Uint64, whose own saved field `value` holds it). CLOCK_BOOTTIME timerfds use the
// monotonic clock in gVisor and are recorded as CLOCK_MONOTONIC.
//
// Each sandbox has its own CLOCK_MONOTONIC, so a monotonic timer is recorded by the time it had
// left and re-armed that far from the thaw (monotonic time does not pass while frozen, as it does
// not during a suspend); a CLOCK_REALTIME timer keeps its absolute expiry (wall time passes: a
// timer that expired meanwhile fires at once, with the expirations its interval implies). The
// pending expirations are added back with NotifyTimer, the timer's own exported listener method.

// captureTimerFD records a timerfd's clock, setting and pending expirations.
func captureTimerFD(t *kernel.Task, tfd *timerfd.TimerFileDescription) (*imgfmt.TimerFDObject, error) {
	body := &imgfmt.TimerFDObject{}
	switch tfd.Clock() {
	case t.Kernel().RealtimeClock():
		body.Clock = imgfmt.ClockRealtime
	case t.Kernel().MonotonicClock():
		body.Clock = imgfmt.ClockMonotonic
	default:
		return nil, fmt.Errorf("timerfd on an unknown clock: %w", errUnsupportedObject)
	}
	now, s := tfd.GetTime()
	if s.Enabled {
		body.Armed = true
		body.Interval = int64(s.Period)
		if body.Clock == imgfmt.ClockRealtime {
			body.Value = s.Next.Nanoseconds()
		} else {
			body.Value = max(int64(s.Next.Sub(now)), 0)
		}
	}
	val, err := stateField(tfd, "val")
	if err != nil {
		return nil, err
	}
	count, err := stateSubfield(val, "value", reflect.Uint64)
	if err != nil {
		return nil, err
	}
	body.Expirations = count.Uint()
	return body, nil
}

// thawTimerFD makes a timerfd on the recorded clock, armed as recorded, with its pending
// expirations.
func thawTimerFD(t *kernel.Task, p *imgfmt.Process, o *imgfmt.Object, body *imgfmt.TimerFDObject) (*thawedObject, error) {
	var clock ktime.SampledClock = t.Kernel().MonotonicClock()
	if body.Clock == imgfmt.ClockRealtime {
		clock = t.Kernel().RealtimeClock()
	}
	f, err := timerfd.New(t, t.Kernel().VFS(), clock, linux.O_RDWR|descStatusFlags(p, o, 0)&linux.O_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("new timerfd: %w", err)
	}
	tfd := f.Impl().(*timerfd.TimerFileDescription)
	if body.Armed {
		next := ktime.FromNanoseconds(body.Value)
		if body.Clock == imgfmt.ClockMonotonic {
			next = clock.Now().Add(time.Duration(body.Value))
		}
		tfd.SetTime(ktime.Setting{Enabled: true, Next: next, Period: time.Duration(body.Interval)})
	}
	if body.Expirations > 0 {
		tfd.NotifyTimer(body.Expirations)
	}
	return &thawedObject{files: []*vfs.FileDescription{f}}, nil
}

// timerFDValType returns a zero atomicbitops.Uint64 (the type of TimerFileDescription.val), for
// TestStateFieldsUsed.
func timerFDValType() stateifyObject {
	f, ok := reflect.TypeOf((*timerfd.TimerFileDescription)(nil)).Elem().FieldByName("val")
	if !ok {
		return nil
	}
	v, _ := reflect.New(f.Type).Interface().(stateifyObject)
	return v
}
