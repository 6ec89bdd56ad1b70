package ckpt

import (
	"sync"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/mm"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// treeWork is the task work a tree freeze registers on one thread of each live process of the
// tree. On the process's own task goroutine (where its FP state can be read) it captures the
// process as a single freeze would (captureProcess: the other threads are parked), takes a
// copy-on-write snapshot of its memory, records what the manifest needs to know about sharing,
// and then keeps the process parked until the coordinator releases it: every process of the tree
// is stopped at once, so the images form one consistent cut.
type treeWork struct {
	captured chan struct{} // Closed when the capture is over (or was skipped).
	release  chan struct{} // Closed by the coordinator: resume (or die, if killed meanwhile).

	mu sync.Mutex
	// cancelled is set when the coordinator gave up on this work before it started (the thread
	// exited); started when the work began. Protected by mu.
	// +checklocks:mu
	cancelled bool
	// +checklocks:mu
	started bool

	// registered is when the coordinator registered the work, began when the capture began (for
	// the log lines that say where the pause goes).
	registered time.Time
	began      time.Time

	// Results, valid once captured is closed.
	err  error
	proc *imgfmt.Process
	stop *siblingStop
	// snap is the copy-on-write snapshot the image is read from, or nil (then the process stays
	// parked until its image is written).
	snap *mm.MemoryManager
	// stopSignal is the signal of the group stop the process sat in, captured from outside
	// (freeze_tree_stopped.go); 0 for a process that captured itself.
	stopSignal int
	// Identities for the manifest: pointers compared, never dereferenced after the release.
	fdTable *kernel.FDTable
	fs      *kernel.FSContext
	mm      *mm.MemoryManager
	fds     map[int32]fileIdentity
}

// fileIdentity identifies what an fd refers to: the open file description, and the dentry (the
// object: both ends of an anonymous pipe share it).
type fileIdentity struct {
	ofd    *vfs.FileDescription
	object *vfs.Dentry
}

// treePoll is how often a parked process checks whether it is released or killed.
const treePoll = 2 * time.Millisecond

// TaskWork implements kernel.TaskWorker.
//
// Preconditions: running on t's task goroutine at a return to user mode.
func (w *treeWork) TaskWork(t *kernel.Task) {
	w.mu.Lock()
	if w.cancelled || w.started {
		w.mu.Unlock()
		return
	}
	w.started = true
	w.mu.Unlock()

	began := time.Now()
	p, stop, err := captureProcess(t, captureRequest{at: atUserBoundary})
	if err != nil {
		w.err = err
		close(w.captured)
		return
	}
	w.record(t, p, stop, began)
	close(w.captured)

	// Parked: no user code runs in this process until the release. A kill (SIGKILL, or the
	// coordinator's CKPT_TREE_KILL) ends the wait too.
	for released := false; !released; {
		t.UninterruptibleSleepStart()
		select {
		case <-w.release:
			released = true
		case <-time.After(treePoll):
		}
		t.UninterruptibleSleepFinish()
		if t.Killed() {
			break
		}
	}
	stop.resume()
}

// record keeps the capture p of t's process (its other threads held by stop), takes its
// copy-on-write snapshot and notes what the manifest needs to know about sharing. t is the
// process's capturing thread: on its own goroutine, or held in a stop (freeze_tree_stopped.go).
func (w *treeWork) record(t *kernel.Task, p *imgfmt.Process, stop *siblingStop, began time.Time) {
	w.proc, w.stop, w.began = p, stop, began
	captured := time.Now()
	w.snap = forkSnapshot(t, p)
	t.Debugf("ckpt: tree freeze: work ran %v after it was registered; capture %v, snapshot %v",
		began.Sub(w.registered), captured.Sub(began), time.Since(captured))
	w.fdTable, w.fs, w.mm = t.FDTable(), t.FSContext(), t.MemoryManager()
	w.fds = make(map[int32]fileIdentity)
	if w.fdTable != nil {
		w.fdTable.ForEach(t, func(fd int32, file *vfs.FileDescription, _ kernel.FDFlags) bool {
			w.fds[fd] = fileIdentity{ofd: file, object: file.VirtualDentry().Dentry()}
			return true
		})
	}
}

// cancel gives up on the work if it has not started and reports whether it did.
func (w *treeWork) cancel() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.started {
		w.cancelled = true
	}
	return w.cancelled
}

// isCaptured reports whether the capture is over.
func (w *treeWork) isCaptured() bool {
	select {
	case <-w.captured:
		return true
	default:
		return false
	}
}
