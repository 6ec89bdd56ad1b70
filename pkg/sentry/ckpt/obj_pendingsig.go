package ckpt

import (
	"fmt"
	"math"
	"reflect"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// Pending signals with their exact siginfo (issue 8 item 7; docs/notes-thaw.md "Pending signals").
// gVisor keeps queued siginfos in unexported lists (one per signal number, in the thread group's
// and in every task's pendingSignals) with no getter short of dequeuing, which only a task can do
// to its own queue and which detaches a POSIX timer's signal from its timer. The freeze therefore
// reads the lists through their stateify fields, read-only (pendingSignals.signals →
// pendingSignalQueue.pendingSignalList → pendingSignalList.head → pendingSignal.SignalInfo,
// .timer, .pendingSignalEntry.next), every queue of the process: nothing is dequeued, so the
// process that goes on after its freeze keeps exactly what it had. A timer's signal is recorded
// with the si_overrun it would get when dequeued (IntervalTimer.overrunCur unless the timer was
// set again since, sigorphan) and flagged as linked to its timer, which the thaw relinks
// (thawTimerSignal).

// maxPendingWalk bounds the entries read from one signal's queue (gVisor queues at most 32; the
// bound only guards against a list changing under the unlocked read).
const maxPendingWalk = 64

// pendingWalk reads pending-signal queues.
type pendingWalk struct {
	o      *imgfmt.PendingSignalsObject
	timers map[uintptr]int32 // *kernel.IntervalTimer address → id, the process's live timers.
}

// capturePendingSignals returns the exact siginfos of the signals pending on t's thread group and
// on each of its threads (the queue layout), or nil if there are none. Only signals the image's
// pending sets show are kept (a signal queued after those sets were read is left out, as if it
// came after the freeze).
//
// Preconditions: running on t's task goroutine, the process's other threads stopped, p.Signals
// and p.Threads captured.
func capturePendingSignals(t *kernel.Task, p *imgfmt.Process) (*imgfmt.PendingSignalsObject, error) {
	if len(p.Threads) == 0 {
		return nil, nil
	}
	tg := t.ThreadGroup()
	w := &pendingWalk{o: &imgfmt.PendingSignalsObject{Queues: []imgfmt.PendingQueue{}}, timers: map[uintptr]int32{}}
	timers, err := stateField(tg, "timers")
	if err != nil {
		return nil, err
	}
	if timers.Kind() != reflect.Map {
		return nil, fmt.Errorf("ThreadGroup.timers is a %s, want a map (gVisor changed)", timers.Kind())
	}
	for it := timers.MapRange(); it.Next(); {
		if v := it.Value(); v.Kind() == reflect.Pointer && !v.IsNil() {
			w.timers[v.Pointer()] = int32(it.Key().Int())
		}
	}
	group, err := stateField(tg, "pendingSignals")
	if err != nil {
		return nil, err
	}
	if err := w.queue(group, 0, p.Signals.Pending); err != nil {
		return nil, fmt.Errorf("the thread group's pending signals: %w", err)
	}
	ns := tg.PIDNamespace()
	for i := range p.Threads {
		th := &p.Threads[i]
		task := ns.TaskWithID(kernel.ThreadID(th.TID))
		if task == nil || task.ThreadGroup() != tg {
			continue
		}
		q, err := stateField(task, "pendingSignals")
		if err != nil {
			return nil, err
		}
		if err := w.queue(q, th.TID, th.SigPending); err != nil {
			return nil, fmt.Errorf("thread %d's pending signals: %w", th.TID, err)
		}
	}
	if len(w.o.Infos) == 0 {
		return nil, nil
	}
	return w.o, nil
}

// queue records the entries of one pendingSignals value (ps) whose signal is in set.
func (w *pendingWalk) queue(ps reflect.Value, tid int32, set uint64) error {
	signals, err := stateSubfield(ps, "signals", reflect.Array)
	if err != nil {
		return err
	}
	for i := 0; i < signals.Len() && i < linux.SignalMaximum; i++ {
		sig := linux.Signal(i + 1)
		if sig == linux.SIGKILL || sig == linux.SIGSTOP || set&uint64(linux.SignalSetOf(sig)) == 0 {
			continue
		}
		list, err := stateSubfield(signals.Index(i), "pendingSignalList", reflect.Struct)
		if err != nil {
			return err
		}
		e, err := stateSubfield(list, "head", reflect.Pointer)
		if err != nil {
			return err
		}
		for n := 0; !e.IsNil() && n < maxPendingWalk; n++ {
			if e, err = w.entry(e.Elem(), tid, sig); err != nil {
				return err
			}
		}
	}
	return nil
}

var signalInfoType = reflect.TypeOf((*linux.SignalInfo)(nil))

// entry records one pendingSignal (a struct value) and returns the next entry's pointer.
func (w *pendingWalk) entry(ps reflect.Value, tid int32, sig linux.Signal) (reflect.Value, error) {
	link, err := stateSubfield(ps, "pendingSignalEntry", reflect.Struct)
	if err != nil {
		return reflect.Value{}, err
	}
	next, err := stateSubfield(link, "next", reflect.Pointer)
	if err != nil {
		return reflect.Value{}, err
	}
	infoPtr, err := stateSubfield(ps, "SignalInfo", reflect.Pointer)
	if err != nil {
		return reflect.Value{}, err
	}
	if infoPtr.Type() != signalInfoType {
		return reflect.Value{}, fmt.Errorf("pendingSignal.SignalInfo is a %s (gVisor changed)", infoPtr.Type())
	}
	timer, err := stateSubfield(ps, "timer", reflect.Pointer)
	if err != nil {
		return reflect.Value{}, err
	}
	if infoPtr.IsNil() {
		return next, nil
	}
	// A copy: the value is only read (the pointer's target is an exported type).
	info := *(*linux.SignalInfo)(infoPtr.UnsafePointer())
	if linux.Signal(info.Signo) != sig {
		return next, nil // Only possible if the list changed under the read.
	}
	q := imgfmt.PendingQueue{TID: tid}
	if !timer.IsNil() {
		if id, ok := w.timers[timer.Pointer()]; ok && info.Code == linux.SI_TIMER && int32(info.TimerID()) == id {
			flags, overrun, err := timerSignalState(timer)
			if err != nil {
				return reflect.Value{}, err
			}
			q.Flags = flags
			if flags&imgfmt.PendingOrphan == 0 {
				info.SetOverrun(overrun)
			}
		}
		// Else the timer was deleted: the signal is orphaned, delivered as it is.
	}
	var b [imgfmt.SigInfoSize]byte
	info.MarshalBytes(b[:])
	w.o.Infos = append(w.o.Infos, b)
	w.o.Queues = append(w.o.Queues, q)
	return next, nil
}

// timerSignalState returns the entry flags of a pending signal linked to the live timer (a
// *kernel.IntervalTimer) and the si_overrun its dequeue would report.
func timerSignalState(timer reflect.Value) (uint32, int32, error) {
	zero := new(kernel.IntervalTimer)
	orphan, err := stateFieldOf(timer, zero, "sigorphan")
	if err != nil {
		return 0, 0, err
	}
	cur, err := stateFieldOf(timer, zero, "overrunCur")
	if err != nil {
		return 0, 0, err
	}
	if orphan.Kind() != reflect.Bool || cur.Kind() != reflect.Uint64 {
		return 0, 0, fmt.Errorf("IntervalTimer.sigorphan/overrunCur changed kind (gVisor changed)")
	}
	if orphan.Bool() {
		return imgfmt.PendingTimer | imgfmt.PendingOrphan, 0, nil
	}
	return imgfmt.PendingTimer, int32(min(cur.Uint(), math.MaxInt32)), nil
}

// pendingEntry is one exact pending signal of an image and the queue it goes to.
type pendingEntry struct {
	info  *linux.SignalInfo
	group bool   // The thread group's queue.
	tid   int32  // Else the queue of the thread with this TID in the image.
	flags uint32 // imgfmt.PendingTimer, PendingOrphan.
}

// queueKey names one signal number's queue of a thread (or of the group, tid 0).
type queueKey struct {
	tid int32
	sig int32
}

func (e *pendingEntry) key() queueKey {
	if e.group {
		return queueKey{sig: e.info.Signo}
	}
	return queueKey{tid: e.tid, sig: e.info.Signo}
}

// exactPending returns the exact pending signals of the image, in order. A first-layout image
// (no queue headers) has those of the group and of the first thread only: a signal in the
// group's pending set is the group's.
func exactPending(p *imgfmt.Process) []pendingEntry {
	for i := range p.Objects {
		o, ok := p.Objects[i].Body.(*imgfmt.PendingSignalsObject)
		if !ok {
			continue
		}
		out := make([]pendingEntry, len(o.Infos))
		for j := range o.Infos {
			e := &out[j]
			e.info = new(linux.SignalInfo)
			e.info.UnmarshalBytes(o.Infos[j][:])
			if o.Queues == nil {
				e.group = p.Signals.Pending&uint64(linux.SignalSetOf(linux.Signal(e.info.Signo))) != 0
				if !e.group && len(p.Threads) > 0 {
					e.tid = p.Threads[0].TID
				}
				continue
			}
			e.group, e.tid, e.flags = o.Queues[j].TID == 0, o.Queues[j].TID, o.Queues[j].Flags
		}
		return out
	}
	return nil
}

// timerQueues returns the queues (per thread and signal number) that hold a signal linked to a
// timer: all of their signals are sent once the timers exist (sendTimerQueues), in order.
func timerQueues(entries []pendingEntry) map[queueKey]bool {
	m := map[queueKey]bool{}
	for i := range entries {
		if entries[i].flags&imgfmt.PendingTimer != 0 {
			m[entries[i].key()] = true
		}
	}
	return m
}

// timerSignalLinked reports whether the image has a pending signal linked to timer id.
func timerSignalLinked(p *imgfmt.Process, id int32) bool {
	for _, e := range exactPending(p) {
		if e.flags&imgfmt.PendingTimer != 0 && int32(e.info.TimerID()) == id {
			return true
		}
	}
	return false
}

// sendEntry queues e again on the thread group or on target.
func sendEntry(t, target *kernel.Task, e *pendingEntry) {
	var err error
	if e.group {
		err = t.ThreadGroup().SendSignal(e.info)
	} else {
		err = target.SendSignal(e.info)
	}
	if err != nil {
		t.Warningf("ckpt: queueing signal %d again: %v", e.info.Signo, err)
	}
}

// sendTimerQueues sends the signals of the queues that hold a timer's signal (timerQueues), in
// their order, once every timer exists: a timer's own signal is queued by the recreated timer
// (thawTimerSignal), the others as they were.
//
// Preconditions: running on t's task goroutine, at the end of the commit, after the timers were
// created.
func (p *thawPlan) sendTimerQueues(t *kernel.Task) error {
	entries := exactPending(p.proc)
	queues := timerQueues(entries)
	for i := range entries {
		e := &entries[i]
		if !queues[e.key()] {
			continue
		}
		if e.flags&imgfmt.PendingTimer != 0 {
			if err := p.thawTimerSignal(t, e); err != nil {
				return err
			}
			continue
		}
		target := t
		if !e.group {
			nt, ok := p.newTIDs[e.tid]
			if target = t.PIDNamespace().TaskWithID(nt); !ok || target == nil || target.ThreadGroup() != t.ThreadGroup() {
				t.Warningf("ckpt: thaw: signal %d pending on thread %d, which is gone", e.info.Signo, e.tid)
				continue
			}
		}
		sendEntry(t, target, e)
	}
	return nil
}

// thawTimerSignal has the recreated timer queue its pending signal and arms the timer. The
// timer's own expiry path (NotifyTimer, exported as ktime.Listener's method) queues an SI_TIMER
// siginfo with the timer's id and value, linked to the timer (further expirations count as
// overruns) and with overrun-1 more expirations counted; timer_settime orphans a signal already
// pending (its overruns stop counting), so a linked signal is queued after the timer is armed,
// an orphaned one before.
func (p *thawPlan) thawTimerSignal(t *kernel.Task, e *pendingEntry) error {
	id := int32(e.info.TimerID())
	var tt *thawedTimer
	for _, o := range p.objects {
		if o != nil && o.timer != nil && o.timer.b.ID == id {
			tt = o.timer
		}
	}
	if tt == nil || tt.it == nil {
		return fmt.Errorf("the pending signal of POSIX timer %d: no such timer was created", id)
	}
	if e.flags&imgfmt.PendingOrphan != 0 {
		tt.it.NotifyTimer(1)
		return armTimer(t, tt.b, true)
	}
	if err := armTimer(t, tt.b, false); err != nil {
		return err
	}
	tt.it.NotifyTimer(uint64(max(e.info.Overrun(), 0)) + 1)
	return nil
}

// pendingSignalTypes returns zero values of gVisor's unexported pending-signal types, for
// stateFieldsUsed: pendingSignals, pendingSignalQueue, pendingSignalList, pendingSignal,
// pendingSignalEntry. It panics if their shape changed (TestStateFieldsUsed then fails).
func pendingSignalTypes() (signals, queue, list, entry, link stateifyObject) {
	signals = stateZeroOfField(new(kernel.Task), "pendingSignals")
	f, ok := reflect.TypeOf(signals).Elem().FieldByName("signals")
	if !ok || f.Type.Kind() != reflect.Array {
		panic("pendingSignals.signals is not an array (gVisor changed)")
	}
	queue = reflect.New(f.Type.Elem()).Interface().(stateifyObject)
	list = stateZeroOfField(queue, "pendingSignalList")
	entry = stateZeroOfField(list, "head")
	link = stateZeroOfField(entry, "pendingSignalEntry")
	return
}
