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

// siblingPoll is how often the freezer looks at the siblings' progress while it waits.
const siblingPoll = time.Millisecond

// stoppedGrace is how long a sibling may sit in a stop that is not ours (group stop, ptrace stop)
// before the freezer records it from the outside instead of waiting for it to capture itself.
const stoppedGrace = 50 * time.Millisecond

// siblingStop is one freeze's hold on the other threads of the process.
type siblingStop struct {
	mu sync.Mutex
	// closed is set by resume; task work that runs later (a sibling that was in another stop and is
	// resumed only now) does nothing. Protected by mu.
	closed bool
	// captured holds each sibling's own capture, by task. Protected by mu.
	captured map[*kernel.Task]captureResult
	// parked are the siblings that put an external stop on themselves, which resume must lift.
	// Protected by mu.
	parked []*kernel.Task
}

// captureResult is what a sibling's task work recorded.
type captureResult struct {
	thread imgfmt.Thread
	err    error
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
	closed := s.closed
	s.mu.Unlock()
	if closed {
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
// systrap). The returned siblingStop must be resumed by the caller, also on error paths (resume is
// idempotent); on error stopSiblings has already resumed it.
//
// The wait is not interruptible by ordinary signals: siblings stop within milliseconds, and an
// interruptible wait would turn every signal arriving meanwhile (Go's preemption SIGURG, a timer's
// SIGALRM) into a failed freeze. Only a kill aborts it.
//
// Errors: EINTR if the freezer is killed while it waits.
//
// Preconditions: running on t's task goroutine.
func stopSiblings(t *kernel.Task) (*siblingStop, []imgfmt.Thread, error) {
	s := &siblingStop{captured: make(map[*kernel.Task]captureResult)}
	kicked := make(map[*kernel.Task]bool)
	stoppedSince := make(map[*kernel.Task]time.Time)
	outside := make(map[*kernel.Task]imgfmt.Thread)
	for {
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
			s.mu.Unlock()
			state := o.TaskGoroutineState()
			switch {
			case o.ExitState() != kernel.TaskExitNone || state == kernel.TaskGoroutineNonexistent:
				// Exiting: it runs no more user code and is not part of the image.
			case done && state == kernel.TaskGoroutineStopped:
				// Captured and parked.
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
				waiting++
			}
		}
		if waiting == 0 {
			break
		}
		if !sleepUnlessKilled(t, siblingPoll) {
			s.resume()
			return nil, nil, fmt.Errorf("killed while waiting for %d threads to stop: %w", waiting, linuxerr.EINTR)
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
			return nil, nil, fmt.Errorf("thread %d: %w", r.thread.TID, r.err)
		}
		threads = append(threads, r.thread)
	}
	s.mu.Unlock()
	for _, th := range outside {
		threads = append(threads, th)
	}
	sort.Slice(threads, func(i, j int) bool { return threads[i].TID < threads[j].TID })
	return s, threads, nil
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

// resume lets the stopped siblings run again. It is idempotent.
func (s *siblingStop) resume() {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, o := range s.parked {
		o.EndExternalStop()
	}
	s.parked = nil
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
