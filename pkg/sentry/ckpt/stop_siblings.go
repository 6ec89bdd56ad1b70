package ckpt

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// The other threads of a freezing process are stopped for the capture so that memory and registers
// are consistent. gVisor's Kernel.Pause deadlocks when called from a task goroutine, and a stopped
// task's FP state cannot be read from another goroutine on systrap, so each sibling captures itself:
// the freezer registers task work on it and interrupts it (Begin/EndExternalStop is the only
// exported way to interrupt another task); the work, on the sibling's own goroutine at its next
// return to user mode, records its registers and then puts an external stop on itself, so it parks
// before running any user code. When the image is written, resume lifts those stops.
//
// Only one freeze of a process runs at a time (freezes registry below). A thread that wants to
// freeze its process while another thread of it is freezing it (two sys_checkpoint calls, a
// SIGCKPT meanwhile) would otherwise wait for a sibling that waits for it: instead it takes part in
// the running freeze as a stopped sibling (captures itself, then waits without running user code),
// and starts its own freeze when that one is over.

// siblingPoll is how often the freezer looks at the siblings' progress while it waits.
const siblingPoll = time.Millisecond

// siblingFirstPoll is the freezer's first pause while its siblings stop. A running thread reaches
// its stop tens to hundreds of microseconds after the interrupt, and every thread of the process
// is stopped meanwhile, so the first looks come sooner than siblingPoll (doubling from here up to
// it): a whole siblingPoll was most of the wait (1.1-2.5 ms of a 3.6 ms pause, 2026-12-03).
const siblingFirstPoll = 25 * time.Microsecond

// siblingBackoff returns the freezer's pause before its look number n+1 (n from 0) at siblings
// that have not stopped yet.
func siblingBackoff(n int) time.Duration {
	if n >= 6 {
		return siblingPoll
	}
	return min(siblingFirstPoll<<n, siblingPoll)
}

// stoppedGrace is how long a sibling may sit in a stop that is not ours (group stop, ptrace stop)
// before the freezer records it from the outside instead of waiting for it to capture itself.
const stoppedGrace = 50 * time.Millisecond

// freezes holds the freeze in progress of each process. Entries exist only while a freeze runs, so
// the map keeps nothing alive for long.
var freezes = freezeRegistry{m: make(map[*kernel.ThreadGroup]*siblingStop)}

// freezeRegistry is the type of freezes.
type freezeRegistry struct {
	mu sync.Mutex
	// +checklocks:mu
	m map[*kernel.ThreadGroup]*siblingStop
}

// siblingStop is one freeze's hold on the other threads of the process.
type siblingStop struct {
	tg *kernel.ThreadGroup // The process being frozen.

	// runningGrace, if not zero, is how long a sibling may keep running inside the sentry without
	// reaching its task work before it is recorded from the outside. Set for core dumps only: a
	// sibling that is itself delivering a fatal signal waits for the event channel's lock, which
	// the dumping thread holds, and would never stop.
	runningGrace time.Duration

	mu sync.Mutex
	// closed is set by resume; task work that runs later (a sibling that was in another stop and is
	// resumed only now) does nothing. Protected by mu.
	// +checklocks:mu
	closed bool
	// captured holds each sibling's own capture, by task. Protected by mu.
	// +checklocks:mu
	captured map[*kernel.Task]captureResult
	// parked are the siblings that put an external stop on themselves, which resume must lift.
	// Protected by mu.
	// +checklocks:mu
	parked []*kernel.Task
	// waiting are the siblings that captured themselves inline while waiting to start a freeze of
	// their own (beginFreeze); they run no user code until closed. Protected by mu.
	// +checklocks:mu
	waiting map[*kernel.Task]bool
}

// captureResult is what a sibling's task work recorded.
type captureResult struct {
	thread imgfmt.Thread
	err    error
}

// beginFreeze registers a freeze of t's process and returns its siblingStop, which the caller must
// resume (that also ends the freeze). If the process is being frozen by another of its threads, t
// takes part in that freeze as a sibling and waits for it to end first.
//
// Errors: EINTR if t is killed while it waits.
//
// Preconditions: running on t's task goroutine; at says where t is.
func beginFreeze(t *kernel.Task, at threadPoint) (*siblingStop, error) {
	tg := t.ThreadGroup()
	for {
		freezes.mu.Lock()
		cur := freezes.m[tg]
		if cur == nil {
			s := &siblingStop{tg: tg, captured: make(map[*kernel.Task]captureResult), waiting: make(map[*kernel.Task]bool)}
			freezes.m[tg] = s
			freezes.mu.Unlock()
			return s, nil
		}
		freezes.mu.Unlock()
		cur.captureWaiting(t, at)
		if !sleepUnlessKilled(t, siblingPoll) {
			return nil, fmt.Errorf("killed while waiting for another freeze of the process: %w", linuxerr.EINTR)
		}
	}
}

// captureWaiting records t as a stopped sibling of freeze s, once, unless s is over.
//
// A thread that s captured already is marked waiting too. That happens when, at one return to
// user mode, t ran s's siblingWork (captured, external stop begun) and then a task work of its own
// that freezes the process (a tree freeze's treeWork, a remote freeze, SIGCKPT): t sleeps here and
// never parks in its stop, and s, waiting for it to park, would wait for ever for a thread that
// waits for s (docs/fuzzing.md, finding 4). Either way t runs no user code until s is over.
func (s *siblingStop) captureWaiting(t *kernel.Task, at threadPoint) {
	s.mu.Lock()
	_, done := s.captured[t]
	closed := s.closed
	if done && !closed {
		s.waiting[t] = true
	}
	s.mu.Unlock()
	if done || closed {
		return
	}
	th, err := captureThread(t, at)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.captured[t] = captureResult{thread: th, err: err}
		s.waiting[t] = true
	}
}

// siblingWork is the task work registered on each sibling.
type siblingWork struct {
	s *siblingStop
}

// TaskWork implements kernel.TaskWorker: capture the calling thread, then park it.
//
// Preconditions: running on t's task goroutine, before it returns to user mode.
func (w *siblingWork) TaskWork(t *kernel.Task) {
	s := w.s
	s.mu.Lock()
	_, done := s.captured[t]
	closed := s.closed
	s.mu.Unlock()
	if closed || done {
		return
	}
	th, err := captureThread(t, atUserBoundary)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.captured[t] = captureResult{thread: th, err: err}
	// runApp checks for the interrupt this raises before it switches to user mode and parks the
	// task in doStop until resume calls EndExternalStop.
	t.BeginExternalStop()
	s.parked = append(s.parked, t)
}

// stopSiblings stops every other thread of t's process and returns their states, sorted by thread
// id. Threads that exit meanwhile are left out. A thread that sits in a group or ptrace stop is
// recorded from the outside (general registers from its last switch; its FP state may be stale on
// systrap). On error stopSiblings has resumed s.
//
// The wait is not interruptible by ordinary signals: siblings stop within milliseconds, and an
// interruptible wait would turn every signal arriving meanwhile (Go's preemption SIGURG, a timer's
// SIGALRM) into a failed freeze. Only a kill aborts it.
//
// Errors: EINTR if the freezer is killed while it waits.
//
// Preconditions: running on t's task goroutine; s came from beginFreeze(t).
func (s *siblingStop) stopSiblings(t *kernel.Task) ([]imgfmt.Thread, error) {
	kicked := make(map[*kernel.Task]bool)
	stoppedSince := make(map[*kernel.Task]time.Time)
	runningSince := make(map[*kernel.Task]time.Time)
	outside := make(map[*kernel.Task]imgfmt.Thread)
	for round := 0; ; round++ {
		// Collect first: ForEachTask holds the TaskSet lock, and kicking takes the signal lock.
		// Enumerate again on every round: a sibling inside clone may add a thread before it stops.
		var sibs []*kernel.Task
		t.ThreadGroup().ForEachTask(func(o *kernel.Task) bool {
			if o != t {
				sibs = append(sibs, o)
			}
			return true
		})
		waiting := 0
		for _, o := range sibs {
			if !kicked[o] {
				kicked[o] = true
				o.RegisterWork(&siblingWork{s})
				o.BeginExternalStop()
				o.EndExternalStop()
			}
			if _, ok := outside[o]; ok {
				continue
			}
			s.mu.Lock()
			_, done := s.captured[o]
			inline := s.waiting[o]
			s.mu.Unlock()
			state := o.TaskGoroutineState()
			switch {
			case o.ExitState() != kernel.TaskExitNone || state == kernel.TaskGoroutineNonexistent:
				// Exiting: it runs no more user code and is not part of the image.
			case done && (inline || state == kernel.TaskGoroutineStopped):
				// Captured and parked (or waiting in beginFreeze).
			case !done && state == kernel.TaskGoroutineStopped:
				// Stopped, but not by us: its work runs only when that stop ends.
				since, ok := stoppedSince[o]
				if !ok {
					stoppedSince[o] = time.Now()
					waiting++
				} else if time.Since(since) >= stoppedGrace {
					outside[o] = captureStoppedThread(o)
				} else {
					waiting++
				}
			default:
				delete(stoppedSince, o)
				since, ok := runningSince[o]
				if !ok {
					runningSince[o] = time.Now()
				} else if s.runningGrace > 0 && time.Since(since) >= s.runningGrace {
					t.Infof("ckpt: thread %d still runs in the sentry after %v; recorded from the outside", o.ThreadID(), s.runningGrace)
					outside[o] = captureStoppedThread(o)
					continue
				}
				waiting++
			}
		}
		if waiting == 0 {
			break
		}
		if !sleepUnlessKilled(t, siblingBackoff(round)) {
			s.resume()
			return nil, fmt.Errorf("killed while waiting for %d threads to stop: %w", waiting, linuxerr.EINTR)
		}
	}

	s.mu.Lock()
	threads := make([]imgfmt.Thread, 0, len(s.captured)+len(outside))
	for o, r := range s.captured {
		if o.ExitState() != kernel.TaskExitNone {
			continue
		}
		if r.err != nil {
			s.mu.Unlock()
			s.resume()
			return nil, fmt.Errorf("thread %d: %w", r.thread.TID, r.err)
		}
		threads = append(threads, r.thread)
	}
	s.mu.Unlock()
	for _, th := range outside {
		threads = append(threads, th)
	}
	sort.Slice(threads, func(i, j int) bool { return threads[i].TID < threads[j].TID })
	return threads, nil
}

// captureStoppedThread records a thread that is stopped by something other than this freeze, from
// the freezer's goroutine: general registers (restart fix-up applied), mask, pending set, altstack.
// Its FP state is left out, since on systrap it may still be in the stub and be stale here.
//
// Preconditions: o is stopped (TaskGoroutineStopped).
func captureStoppedThread(o *kernel.Task) imgfmt.Thread {
	c := o.Arch().Fork()
	fixupRestart(c)
	alt := o.SignalStack()
	var clearTID uint64
	o.WithMuLocked(func(tt *kernel.Task) { clearTID = clearTIDOf(tt, tt.MemoryManager()) })
	return imgfmt.Thread{
		TID:        int32(o.ThreadGroup().PIDNamespace().IDOfTask(o)),
		Regs:       regsOf(&c.Regs.PtraceRegs),
		SigMask:    uint64(o.SignalMask()),
		SigPending: uint64(o.PendingSignals()),
		AltStack:   imgfmt.AltStack{Addr: alt.Addr, Flags: int32(alt.Flags), Size: alt.Size},
		RobustList: uint64(o.GetRobustList()),
		ClearTID:   clearTID,
	}
}

// release lets the stopped siblings run again; the freeze stays registered (another freeze of the
// process waits) until resume. It is idempotent.
func (s *siblingStop) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, o := range s.parked {
		o.EndExternalStop()
	}
	s.parked = nil
}

// resume lets the stopped siblings run again and ends the freeze, so another one of the process
// can start. It is idempotent.
func (s *siblingStop) resume() {
	if s == nil {
		return
	}
	s.release()
	freezes.mu.Lock()
	if freezes.m[s.tg] == s {
		delete(freezes.m, s.tg)
	}
	freezes.mu.Unlock()
}

// sleepUnlessKilled sleeps for d in an uninterruptible sleep (signals stay pending and are
// delivered later) and reports whether t is still alive, i.e. not killed by SIGKILL or exit_group.
//
// Preconditions: running on t's task goroutine.
func sleepUnlessKilled(t *kernel.Task, d time.Duration) bool {
	if t.Killed() {
		return false
	}
	t.UninterruptibleSleepStart()
	time.Sleep(d)
	t.UninterruptibleSleepFinish()
	return !t.Killed()
}
