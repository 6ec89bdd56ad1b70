package ckpt

import (
	"fmt"
	"reflect"
	"sort"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/ktime"
)

// POSIX timers (timer_create): process-wide objects without fds. gVisor has no way to list a
// thread group's timers or to read a timer's clock and sigevent, so the capture reads the thread
// group's saved fields "timers" (id → *IntervalTimer) and "nextTimerID", and each timer's "target",
// "group", "signo", "sigval" and its ktime timer's "clock" (stateify field route, read-only; see
// stateFieldsUsed). The armed value and interval come from the exported IntervalTimerGettime and
// the overrun from IntervalTimerGetoverrun.
//
// A thaw recreates each timer with the exported IntervalTimerCreate and IntervalTimerSettime, with
// the same id: gVisor allocates ids upwards from the thread group's next id (which the thaw's exec
// does not reset), so the thaw creates and deletes SIGEV_NONE fillers until the next id is the one
// wanted. The prepare phase refuses (EBUSY) an image whose lowest id is below the thawer's next id
// or whose ids would need more than maxTimerFillers fillers. A timer is armed with the remaining
// time it had at the freeze (its clock's epoch differs between sandboxes; CLOCK_REALTIME timers set
// with TIMER_ABSTIME thus fire later by the time the process spent frozen). The timers are created
// after the threads are (a SIGEV_THREAD_ID timer needs its thread's new task), just before the
// thawed process returns to user mode. Not restored: overrun counts (no setter; timer_getoverrun is
// 0 until the next expiry's signal is dequeued) and the link between a timer and its signal already
// pending at the freeze (the signal comes back as a plain pending signal).

// maxTimerFillers bounds the filler timers a thaw creates to reach the image's ids.
const maxTimerFillers = 1 << 16

// errTimerID is the thaw's error when an image's timer id cannot be had in the thawing process.
var errTimerID = linuxerr.EBUSY

// capturePosixTimers returns the process's POSIX timers in ascending id order.
//
// Preconditions: running on t's task goroutine, the process's other threads stopped.
func capturePosixTimers(t *kernel.Task, p *imgfmt.Process) ([]imgfmt.ObjectBody, error) {
	tg := t.ThreadGroup()
	timers, err := stateField(tg, "timers")
	if err != nil {
		return nil, err
	}
	if timers.Kind() != reflect.Map {
		return nil, fmt.Errorf("ThreadGroup.timers is a %s, want a map (gVisor changed)", timers.Kind())
	}
	ids := make([]int32, 0, timers.Len())
	for _, k := range timers.MapKeys() {
		ids = append(ids, int32(k.Int()))
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	threads := threadsByTask(t, p)
	var out []imgfmt.ObjectBody
	for _, id := range ids {
		it := timers.MapIndex(reflect.ValueOf(linux.TimerID(id)))
		if !it.IsValid() || it.IsNil() {
			continue // Deleted by another process's thread meanwhile: impossible while frozen.
		}
		o, err := captureTimer(t, it, threads)
		if err != nil {
			return nil, fmt.Errorf("POSIX timer %d: %w", id, err)
		}
		o.ID = id
		its, err := t.IntervalTimerGettime(linux.TimerID(id))
		if err != nil {
			return nil, fmt.Errorf("POSIX timer %d: timer_gettime: %w", id, err)
		}
		o.Remaining, o.Interval = its.Value.ToNsecCapped(), its.Interval.ToNsecCapped()
		if o.Overrun, err = t.IntervalTimerGetoverrun(linux.TimerID(id)); err != nil {
			return nil, fmt.Errorf("POSIX timer %d: timer_getoverrun: %w", id, err)
		}
		if o.Remaining >= imgfmt.MaxTimerNanos || o.Interval >= imgfmt.MaxTimerNanos {
			return nil, fmt.Errorf("POSIX timer %d: a time beyond 2^62 ns: %w", id, errUnsupportedObject)
		}
		out = append(out, o)
	}
	return out, nil
}

// threadsByTask maps the address of each task of t's process to its TID in the image.
func threadsByTask(t *kernel.Task, p *imgfmt.Process) map[uintptr]int32 {
	tg := t.ThreadGroup()
	ns := tg.PIDNamespace()
	m := make(map[uintptr]int32)
	for _, tid := range tg.MemberIDs(ns) {
		if task := ns.TaskWithID(tid); task != nil {
			m[reflect.ValueOf(task).Pointer()] = int32(tid)
		}
	}
	return m
}

// captureTimer reads the clock and sigevent of one *kernel.IntervalTimer (it, read-only).
func captureTimer(t *kernel.Task, it reflect.Value, threads map[uintptr]int32) (*imgfmt.PosixTimerObject, error) {
	zero := new(kernel.IntervalTimer)
	o := &imgfmt.PosixTimerObject{Notify: linux.SIGEV_NONE}
	target, err := stateFieldOf(it, zero, "target")
	if err != nil {
		return nil, err
	}
	if !target.IsNil() {
		group, err := stateFieldOf(it, zero, "group")
		if err != nil {
			return nil, err
		}
		signo, err := stateFieldOf(it, zero, "signo")
		if err != nil {
			return nil, err
		}
		sigval, err := stateFieldOf(it, zero, "sigval")
		if err != nil {
			return nil, err
		}
		o.Signo, o.Value = int32(signo.Int()), sigval.Uint()
		if group.Bool() {
			o.Notify = linux.SIGEV_SIGNAL
		} else {
			o.Notify = linux.SIGEV_THREAD_ID
			tid, ok := threads[target.Pointer()]
			if !ok {
				return nil, fmt.Errorf("SIGEV_THREAD_ID to a task that is not a thread of the process")
			}
			o.TID = tid
		}
	}
	clock, err := timerClockOf(t, it, zero, threads)
	if err != nil {
		return nil, err
	}
	o.Clock, o.ClockTID = clock.clock, clock.tid
	return o, nil
}

type timerClockID struct {
	clock imgfmt.TimerClock
	tid   int32
}

// timerClockOf names the clock of an IntervalTimer's ktime timer by comparing the clock's address
// with those of the kernel's and the process's clocks.
func timerClockOf(t *kernel.Task, it reflect.Value, zero *kernel.IntervalTimer, threads map[uintptr]int32) (timerClockID, error) {
	timer, err := stateFieldOf(it, zero, "timer")
	if err != nil {
		return timerClockID{}, err
	}
	if timer.IsNil() {
		return timerClockID{}, fmt.Errorf("destroyed timer")
	}
	impl := timer.Elem()
	var clock reflect.Value
	switch impl.Type() {
	case reflect.TypeOf((*ktime.SampledTimer)(nil)):
		if clock, err = stateFieldOf(impl, new(ktime.SampledTimer), "clock"); err == nil {
			clock = clock.Elem()
		}
	case reflect.TypeOf((*ktime.SyntheticTimer)(nil)):
		clock, err = stateFieldOf(impl, new(ktime.SyntheticTimer), "clock")
	default:
		return timerClockID{}, fmt.Errorf("timer of type %s: %w", impl.Type(), errUnsupportedObject)
	}
	if err != nil {
		return timerClockID{}, err
	}
	if !clock.IsValid() || clock.Kind() != reflect.Pointer {
		return timerClockID{}, fmt.Errorf("timer clock not a pointer (gVisor changed)")
	}
	at := clock.Pointer()
	k, tg := t.Kernel(), t.ThreadGroup()
	addr := func(c ktime.Clock) uintptr { return reflect.ValueOf(c).Pointer() }
	switch at {
	case addr(k.RealtimeClock()):
		return timerClockID{clock: imgfmt.TimerRealtime}, nil
	case addr(k.MonotonicClock()):
		return timerClockID{clock: imgfmt.TimerMonotonic}, nil
	case addr(tg.CPUClock()):
		return timerClockID{clock: imgfmt.TimerProcessCPU}, nil
	case addr(tg.UserCPUClock()):
		return timerClockID{clock: imgfmt.TimerProcessUser}, nil
	}
	ns := tg.PIDNamespace()
	for _, tid := range threads {
		task := ns.TaskWithID(kernel.ThreadID(tid))
		if task == nil {
			continue
		}
		switch at {
		case addr(task.CPUClock()):
			return timerClockID{clock: imgfmt.TimerThreadCPU, tid: tid}, nil
		case addr(task.UserCPUClock()):
			return timerClockID{clock: imgfmt.TimerThreadUser, tid: tid}, nil
		}
	}
	return timerClockID{}, fmt.Errorf("a clock that is neither the kernel's nor the process's: %w", errUnsupportedObject)
}

// nextTimerID returns the id gVisor gives the next timer of t's process.
func nextTimerID(t *kernel.Task) (int32, error) {
	n, err := stateInt(t.ThreadGroup(), "nextTimerID")
	return int32(n), err
}

// thawPosixTimer checks that the timer's id can be had (EBUSY otherwise) and returns an object
// whose afterThreads step recreates it.
func thawPosixTimer(t *kernel.Task, p *imgfmt.Process, o *imgfmt.Object, b *imgfmt.PosixTimerObject) (*thawedObject, error) {
	next, err := nextTimerID(t)
	if err != nil {
		return nil, err
	}
	// Timers are created in image order, which is ascending: the first one's id decides.
	first, count := b.ID, 0
	for i := range p.Objects {
		if pt, ok := p.Objects[i].Body.(*imgfmt.PosixTimerObject); ok {
			first = min(first, pt.ID)
			count++
		}
	}
	if first < next {
		return nil, fmt.Errorf("POSIX timer id %d cannot be had: the thawing process's next timer id is %d: %w", first, next, errTimerID)
	}
	if int64(b.ID)-int64(next) > maxTimerFillers+int64(count) {
		return nil, fmt.Errorf("POSIX timer id %d cannot be had: %d ids above the next one (%d): %w", b.ID, b.ID-next, next, errTimerID)
	}
	tt := &thawedTimer{b: b, linked: timerSignalLinked(p, b.ID)}
	return &thawedObject{timer: tt, afterThreads: func(t *kernel.Task, tids map[int32]kernel.ThreadID) error {
		it, err := createTimer(t, b, tids, !tt.linked)
		tt.it = it
		return err
	}}, nil
}

// thawedTimer is a POSIX timer recreated by a thaw.
type thawedTimer struct {
	b *imgfmt.PosixTimerObject
	// linked: a pending signal of the image is linked to the timer; the timer is armed when that
	// signal is queued (thawTimerSignal), not when it is created.
	linked bool
	it     *kernel.IntervalTimer // Once created.
}

// listenerClock is a ktime.Clock that remembers the listener of the timer it makes:
// IntervalTimerCreate passes the new *kernel.IntervalTimer to its clock's NewTimer, which is the
// only exported way to get hold of it (for NotifyTimer, thawTimerSignal). The timer itself is
// the wrapped clock's.
type listenerClock struct {
	ktime.Clock
	listener ktime.Listener
}

// NewTimer implements ktime.Clock.NewTimer.
func (c *listenerClock) NewTimer(l ktime.Listener) ktime.Timer {
	c.listener = l
	return c.Clock.NewTimer(l)
}

// createTimer recreates one timer with its id, clock and sigevent, and if arm, its remaining time.
//
// Preconditions: running on t's task goroutine, at commit, after the threads were created.
func createTimer(t *kernel.Task, b *imgfmt.PosixTimerObject, tids map[int32]kernel.ThreadID, arm bool) (*kernel.IntervalTimer, error) {
	for {
		next, err := nextTimerID(t)
		if err != nil {
			return nil, err
		}
		if next == b.ID {
			break
		}
		if next > b.ID || next < 0 {
			return nil, fmt.Errorf("POSIX timer id %d: the next id is %d already: %w", b.ID, next, errTimerID)
		}
		id, err := t.IntervalTimerCreate(t.Kernel().MonotonicClock(), &linux.Sigevent{Notify: linux.SIGEV_NONE})
		if err != nil {
			return nil, fmt.Errorf("POSIX timer id %d: filler: %w", b.ID, err)
		}
		if err := t.IntervalTimerDelete(id); err != nil {
			return nil, fmt.Errorf("POSIX timer id %d: deleting filler %d: %w", b.ID, id, err)
		}
	}
	task := func(tid int32) (*kernel.Task, error) {
		if nt, ok := tids[tid]; ok {
			if task := t.PIDNamespace().TaskWithID(nt); task != nil && task.ThreadGroup() == t.ThreadGroup() {
				return task, nil
			}
		}
		return nil, fmt.Errorf("thread %d of the image is gone", tid)
	}
	var clock ktime.Clock
	switch b.Clock {
	case imgfmt.TimerRealtime:
		clock = t.Kernel().RealtimeClock()
	case imgfmt.TimerMonotonic:
		clock = t.Kernel().MonotonicClock()
	case imgfmt.TimerProcessCPU:
		clock = t.ThreadGroup().CPUClock()
	case imgfmt.TimerProcessUser:
		clock = t.ThreadGroup().UserCPUClock()
	case imgfmt.TimerThreadCPU, imgfmt.TimerThreadUser:
		ct, err := task(b.ClockTID)
		if err != nil {
			return nil, fmt.Errorf("POSIX timer %d: clock: %w", b.ID, err)
		}
		clock = ct.CPUClock()
		if b.Clock == imgfmt.TimerThreadUser {
			clock = ct.UserCPUClock()
		}
	default:
		return nil, fmt.Errorf("POSIX timer %d: clock %d: %w", b.ID, b.Clock, errInvalidImage)
	}
	sev := &linux.Sigevent{Notify: int32(b.Notify), Signo: b.Signo, Value: b.Value}
	if b.Notify == linux.SIGEV_THREAD_ID {
		target, err := task(b.TID)
		if err != nil {
			return nil, fmt.Errorf("POSIX timer %d: target: %w", b.ID, err)
		}
		sev.Tid = int32(target.ThreadID())
	}
	lc := &listenerClock{Clock: clock}
	id, err := t.IntervalTimerCreate(lc, sev)
	if err != nil {
		return nil, fmt.Errorf("POSIX timer %d: timer_create: %w", b.ID, err)
	}
	if int32(id) != b.ID {
		t.IntervalTimerDelete(id)
		return nil, fmt.Errorf("POSIX timer %d: got id %d: %w", b.ID, id, errTimerID)
	}
	it, ok := lc.listener.(*kernel.IntervalTimer)
	if !ok {
		return nil, fmt.Errorf("POSIX timer %d: timer_create did not pass its IntervalTimer to the clock (gVisor changed)", b.ID)
	}
	if arm {
		return it, armTimer(t, b, false)
	}
	return it, nil
}

// armTimer sets timer b.ID to the remaining time and interval it had at the freeze. A disarmed
// timer is left alone unless always: timer_settime's side effect, orphaning the timer's pending
// signal, is then wanted (thawTimerSignal).
func armTimer(t *kernel.Task, b *imgfmt.PosixTimerObject, always bool) error {
	if b.Remaining <= 0 && !always {
		return nil
	}
	var its linux.Itimerspec
	if b.Remaining > 0 {
		its = linux.Itimerspec{Value: linux.NsecToTimespec(b.Remaining), Interval: linux.NsecToTimespec(b.Interval)}
	}
	if _, err := t.IntervalTimerSettime(linux.TimerID(b.ID), its, false); err != nil {
		return fmt.Errorf("POSIX timer %d: timer_settime: %w", b.ID, err)
	}
	return nil
}
