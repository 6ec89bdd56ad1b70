package ckpt

import (
	"fmt"

	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// Reaching a recorded pid. gVisor's allocator (PIDNamespace.allocateTID) gives the first id after
// the last one handed out that is not used by a task, a process group or a session, and wraps at
// TasksLimit. There is no set_tid. So a restorer that is the only one forking can have any id above
// the last one handed out: it predicts the next id from the namespace's tables, makes throw-away
// threads (which exit at once) while the prediction is below the id it wants, and clones the real
// process when the prediction is the id. An id at or below the last one handed out, or one that is
// in use, cannot be had (short of going round the whole id space): the restore fails and says so.
// If someone else forks meanwhile, a clone gets a lower id than predicted (it exits and is reaped,
// and the restorer tries again) or a higher one (the restore fails).

// maxPidSteps bounds the throw-away threads made for one pid: one trip round the id space.
const maxPidSteps = kernel.TasksLimit + 1

// usedID reports whether id is taken by a task, a process group or a session.
func (r *treeRestore) usedID(id int32) bool {
	tid := kernel.ThreadID(id)
	return r.ns.TaskWithID(tid) != nil || r.ns.ProcessGroupWithID(kernel.ProcessGroupID(tid)) != nil || r.ns.SessionWithID(kernel.SessionID(tid)) != nil
}

// nextFree predicts the id the allocator hands out next (allocateTID's loop, wrap included).
func (r *treeRestore) nextFree() int32 {
	id := r.last
	for range kernel.TasksLimit {
		id++
		if id > kernel.TasksLimit {
			id = 2
		}
		if !r.usedID(id) {
			return id
		}
	}
	return 0
}

// create makes a child of parent that has pid want (or, when pids need not be exact, whatever pid
// it gets), cloned by cloner with the extra clone flags (CLONE_FS; cloner is parent, or a child of
// parent with CLONE_PARENT among the flags), and returns its id. The caller registers it. Ids
// below the allocator's position are reached by going round the id space (TasksLimit, 65536 ids)
// with throw-away threads.
func (r *treeRestore) create(cloner, parent *restoreNode, want int32, flags uint64) (int32, error) {
	if r.exact && r.usedID(want) {
		return 0, fmt.Errorf("pid %d cannot be had: it is in use: %w", want, linuxerr.EBUSY)
	}
	for steps := 0; steps < maxPidSteps; steps++ {
		if r.last != 0 && r.exact {
			if next := r.nextFree(); next != want {
				tid, err := throwAwayThread(r.coord, r.tramp)
				if err != nil {
					return 0, fmt.Errorf("throw-away thread: %w", err)
				}
				r.last = tid
				r.thrown++
				if tid == want {
					return 0, fmt.Errorf("pid %d cannot be had: a throw-away thread got it (something else is creating tasks): %w", want, linuxerr.EBUSY)
				}
				if tid > next {
					r.passed++
				}
				continue
			}
		}
		r.cloneStarts()
		rep, err := r.do(cloner, agentCmd{op: opClone, arg: int64(flags)})
		if err == nil && rep.err != nil {
			err = fmt.Errorf("clone: %w", rep.err)
		}
		if err != nil {
			r.cloneFailed()
			return 0, err
		}
		tid := rep.tid
		r.last = tid
		if tid == want || !r.exact {
			return tid, nil
		}
		// Someone else took the predicted id: this clone is a waste that exits. Reap it and go on
		// (a thread exits alone: nothing to reap).
		r.register(tid, nil)
		if flags&linux.CLONE_THREAD != 0 {
			continue
		}
		rep, err = r.do(parent, agentCmd{op: opReap, arg: int64(tid)})
		if err != nil {
			return 0, err
		}
		if rep.err != nil {
			return 0, rep.err
		}
	}
	return 0, fmt.Errorf("pid %d not reached after %d steps: %w", want, maxPidSteps, linuxerr.EBUSY)
}
