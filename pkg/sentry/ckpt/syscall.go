package ckpt

import (
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/arch"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/kernel/auth"
	"gvisor.dev/gvisor/pkg/sentry/limits"
	"gvisor.dev/gvisor/pkg/sentry/mm"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// freezeRequest is a validated CKPT_FREEZE call: everything freeze needs, checked against the
// caller's rights and the policy before any state is captured.
type freezeRequest struct {
	// target is the task whose process is frozen. It is the caller itself when the caller asked
	// for its own process (pid -1 or its own pid), otherwise the leader of another process that
	// the caller may ptrace (an extension of DragonFly's semantics).
	target *kernel.Task

	// self reports whether target is the calling task (t == target).
	self bool

	// file is the caller's file, open for writing, that receives the image; nil means the image
	// goes to policy.FileName(...) resolved against the target's working directory. The request
	// holds a reference on file, dropped by release.
	file *vfs.FileDescription

	// policy is the sandbox's checkpoint policy at the time of the call.
	policy Policy
}

// release drops the references held by r.
func (r *freezeRequest) release(t *kernel.Task) {
	if r.file != nil {
		r.file.DecRef(t)
		r.file = nil
	}
}

// thawRequest is a validated CKPT_THAW call.
type thawRequest struct {
	// file is the caller's file, open for reading, that holds the image. The request holds a
	// reference on it, dropped by release.
	file *vfs.FileDescription

	// retval is what the thawed program's sys_checkpoint call returns, sign-extended like any
	// int syscall result.
	retval uintptr

	// policy is the sandbox's checkpoint policy at the time of the call.
	policy Policy

	// inherit, when not nil, says which fds of the image take an fd the caller already has
	// instead of what the image records (image fd → caller fd); the caller then keeps no other
	// fd, not even 0–2. nil: the caller keeps 0–2 (CKPT_THAW). A tree restore uses it for the
	// container's stdio and for objects it created once for several processes (thaw_tree.go).
	inherit map[int32]int32

	// share, when not nil, is what a tree restore shares with this thaw: objects it rebuilt once
	// for several processes, and the epoll instances the other processes' thaws rebuilt
	// (thaw_tree_objects.go). The request holds no reference: the restore keeps them alive
	// until every thaw has been prepared.
	share *treeShare
}

// release drops the references held by r.
func (r *thawRequest) release(t *kernel.Task) {
	if r.file != nil {
		r.file.DecRef(t)
		r.file = nil
	}
}

// sysCheckpoint implements long sys_checkpoint(int type, int fd, pid_t pid, int retval).
//
// All four arguments are C ints and are read as 32 bits: C's variadic syscall() passes -1 as
// 0xffffffff, other callers as 0xffffffffffffffff. Errors follow docs/abi.md and DragonFly:
// EPERM by policy or for a non-dumpable (set-id) process, EOPNOTSUPP for an unknown type, EINVAL for
// a bad pid (ESRCH if it does not exist), EBADF for an unusable fd, ERANGE if RLIMIT_CORE is 0.
//
// Preconditions: running on t's task goroutine (it is a syscall handler).
func sysCheckpoint(t *kernel.Task, sysno uintptr, args arch.SyscallArguments) (uintptr, *kernel.SyscallControl, error) {
	typ := args[0].Int()
	fd := args[1].Int()
	pid := args[2].Int()
	retval := args[3].Int()

	policy := CurrentPolicy()
	if err := checkGroup(t, policy); err != nil {
		return 0, nil, err
	}

	switch typ {
	case CKPT_FREEZE:
		req, err := newFreezeRequest(t, policy, fd, pid)
		if err != nil {
			return 0, nil, err
		}
		defer req.release(t)
		if err := freeze(t, req); err != nil {
			return 0, nil, err
		}
		return 0, nil, nil
	case CKPT_FREEZE_ASYNC:
		req, err := newFreezeRequest(t, policy, fd, pid)
		if err != nil {
			return 0, nil, err
		}
		defer req.release(t)
		return 0, nil, freezeAsync(t, req)
	case CKPT_FREEZE_INCR:
		req, err := newFreezeRequest(t, policy, fd, pid)
		if err != nil {
			return 0, nil, err
		}
		defer req.release(t)
		return 0, nil, freezeIncr(t, req, retval)
	case CKPT_WAIT:
		n, err := ckptWait(t, fd, pid, retval)
		return n, nil, err
	case CKPT_THAW:
		req, err := newThawRequest(t, policy, fd, pid, retval)
		if err != nil {
			return 0, nil, err
		}
		defer req.release(t)
		return thaw(t, req)
	case CKPT_THAW_TREE:
		switch retval {
		case treeAgentFlag:
			return serveAgent(t, pid)
		case treeCoordFlag:
			return resumeCoordinator(t, pid)
		}
		req, err := newTreeThawRequest(t, fd, pid, retval)
		if err != nil {
			return 0, nil, err
		}
		return thawTree(t, req)
	case CKPT_FREEZE_TREE:
		req, err := newTreeFreezeRequest(t, fd, pid, retval)
		if err != nil {
			return 0, nil, err
		}
		return 0, nil, syscallError(t, freezeTree(t, req))
	default:
		return 0, nil, linuxerr.EOPNOTSUPP
	}
}

// checkGroup returns EPERM unless the policy allows every group or t is a member of its group.
func checkGroup(t *kernel.Task, p Policy) error {
	if p.Group < 0 {
		return nil
	}
	if !t.Credentials().InGroup(auth.KGID(p.Group)) {
		return linuxerr.EPERM
	}
	return nil
}

// newFreezeRequest validates the fd and pid of a CKPT_FREEZE call. Checks run in this order: pid,
// fd, dumpability, RLIMIT_CORE.
func newFreezeRequest(t *kernel.Task, p Policy, fd, pid int32) (freezeRequest, error) {
	target, err := freezeTarget(t, pid)
	if err != nil {
		return freezeRequest{}, err
	}
	req := freezeRequest{target: target, self: target == t, policy: p}

	switch {
	case fd == -1 && pid == -1:
		// File-name mode: the image goes to the policy's ckpt-file.
	case fd < 0:
		// Includes fd == -1 with an explicit pid: DragonFly only names the file for pid -1.
		return freezeRequest{}, linuxerr.EBADF
	default:
		file, err := openFile(t, fd, true /* write */)
		if err != nil {
			return freezeRequest{}, err
		}
		req.file = file
	}

	if err := checkDumpable(t, target); err != nil {
		req.release(t)
		return freezeRequest{}, err
	}
	if target.ThreadGroup().Limits().Get(limits.Core).Cur == 0 {
		req.release(t)
		return freezeRequest{}, linuxerr.ERANGE
	}
	return req, nil
}

// freezeTarget resolves the pid argument of CKPT_FREEZE: -1 or the caller's own pid (any thread of
// its process) mean the caller; another positive pid names a process the caller may ptrace.
func freezeTarget(t *kernel.Task, pid int32) (*kernel.Task, error) {
	if pid == -1 {
		return t, nil
	}
	if pid <= 0 {
		return nil, linuxerr.EINVAL
	}
	target := t.PIDNamespace().TaskWithID(kernel.ThreadID(pid))
	if target == nil {
		return nil, linuxerr.ESRCH
	}
	if target.ThreadGroup() == t.ThreadGroup() {
		return t, nil
	}
	leader := target.ThreadGroup().Leader()
	if leader == nil {
		return nil, linuxerr.ESRCH
	}
	// A process whose main thread called pthread_exit while others run has an exited leader
	// with no address space: the freeze runs on (and checks) one of the live threads.
	live := liveThread(leader)
	if live == nil {
		// Every thread has exited: the process is exiting.
		return nil, linuxerr.ESRCH
	}
	if !t.CanTrace(live, true /* attach */) {
		return nil, linuxerr.EPERM
	}
	return live, nil
}

// checkDumpable returns EPERM if target's process may not be dumped (DragonFly refuses set-id
// processes; gVisor marks a process non-dumpable when its credentials change or by prctl), and
// ESRCH if it has no address space any more (it is exiting).
func checkDumpable(t, target *kernel.Task) error {
	var (
		dump  mm.Dumpability
		hasMM bool
	)
	if target == t {
		m := t.MemoryManager()
		hasMM = m != nil
		if hasMM {
			dump = m.Dumpability()
		}
	} else {
		target.WithMuLocked(func(tt *kernel.Task) {
			m := tt.MemoryManager()
			hasMM = m != nil
			if hasMM {
				dump = m.Dumpability()
			}
		})
	}
	if !hasMM {
		return linuxerr.ESRCH
	}
	if dump != mm.UserDumpable {
		return linuxerr.EPERM
	}
	return nil
}

// newThawRequest validates the fd and pid of a CKPT_THAW call: pid must be -1 (EINVAL otherwise),
// fd must be open for reading (EBADF otherwise).
func newThawRequest(t *kernel.Task, p Policy, fd, pid, retval int32) (thawRequest, error) {
	if pid != -1 {
		return thawRequest{}, linuxerr.EINVAL
	}
	file, err := openFile(t, fd, false /* write */)
	if err != nil {
		return thawRequest{}, err
	}
	return thawRequest{file: file, retval: uintptr(int64(retval)), policy: p}, nil
}

// openFile returns a reference on t's file fd if it is open for writing (write) or reading
// (!write), and EBADF otherwise. O_PATH files are neither, whatever their access mode says.
func openFile(t *kernel.Task, fd int32, write bool) (*vfs.FileDescription, error) {
	if fd < 0 {
		return nil, linuxerr.EBADF
	}
	file := t.GetFile(fd)
	if file == nil {
		return nil, linuxerr.EBADF
	}
	ok := file.IsReadable()
	if write {
		ok = file.IsWritable()
	}
	if !ok || file.StatusFlags()&linux.O_PATH != 0 {
		file.DecRef(t)
		return nil, linuxerr.EBADF
	}
	return file, nil
}
