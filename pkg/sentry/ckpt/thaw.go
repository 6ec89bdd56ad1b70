package ckpt

import (
	"errors"
	"fmt"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/mm"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// Thaw is staged like CRIU's restore: validate → prepare → commit.
//
//   - validate (thaw, on the caller's syscall): decode the whole image and check it against this
//     sandbox: addresses inside the platform's user range, the same vDSO build, a free place for
//     the vDSO, the caller's resource limits. A malformed or unusable image is EINVAL (ENOMEM,
//     EMFILE for limits).
//   - prepare (still in the syscall): reopen every file the image refers to (fds, mappings stored
//     by reference, the executable) and verify each is the same, unchanged file (ESTALE otherwise);
//     look up the working directory (ESTALE if it is no longer a directory);
//     check that the image and those files can be mapped; make the placeholders for fds that
//     cannot be reopened.
//   - commit: nothing can fail for a reason the image or the filesystem controls any more. The
//     caller execs its own executable, which is the only exported way to get rid of its sibling
//     threads (a Go `checkpt` always has some) and gives a fresh address space; a task work item
//     then runs on the task goroutine before the first user instruction and turns the process
//     into the frozen one (thawCommit.TaskWork).
//
// Until commit the caller's address space, fds and signal state are untouched, so every failure
// before it is an ordinary syscall error and the caller keeps running; so is a failing exec (the
// task work then sees the old address space and does nothing). A failure inside commit (which
// needs e.g. the host to run out of memory) kills the process with SIGKILL and logs why.

// thaw replaces t's process with the image in req.file; on success it does not return to the
// caller's code: the thawed program resumes with req.retval as its sys_checkpoint result.
//
// Preconditions: running on t's task goroutine; req was validated by newThawRequest.
func thaw(t *kernel.Task, req thawRequest) (uintptr, *kernel.SyscallControl, error) {
	start := time.Now()
	plan, err := prepareThaw(t, req)
	if err != nil {
		t.Debugf("ckpt: thaw refused: %v", err)
		return 0, nil, sysErrno(errnoThaw, err)
	}
	return execThaw(t, plan, start)
}

// execThaw starts the commit of a prepared plan: the caller execs its own executable and the
// commit runs as task work before the first user instruction. It consumes plan.
//
// Preconditions: running on t's task goroutine, in a syscall.
func execThaw(t *kernel.Task, plan *thawPlan, start time.Time) (uintptr, *kernel.SyscallControl, error) {
	exe := t.MemoryManager().Executable()
	if exe == nil {
		plan.release(t)
		return 0, nil, linuxerr.EINVAL
	}
	if err := checkExecGainsNothing(t, exe); err != nil {
		exe.DecRef(t)
		plan.release(t)
		return 0, nil, sysErrno(errnoThaw, err)
	}
	plan.start, plan.prepared = start, time.Now()
	t.RegisterWork(&thawCommit{plan: plan, before: t.MemoryManager()})
	// Execve takes ownership of exe. Its argv and environment do not matter: the image replaces them.
	return 0, t.Execve([]string{plan.proc.Info.Name}, nil, 0, exe.MappedName(t), exe, false), nil
}

// errInvalidImage marks an image that decodes but cannot be thawed here (wrong vDSO, addresses
// outside this platform's user range, ...). It maps to EINVAL.
var errInvalidImage = errors.New("image cannot be thawed here")

// invalidf returns an error matching errInvalidImage.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errInvalidImage, fmt.Sprintf(format, args...))
}

// thawPlan is a validated image plus everything prepared for it. It holds references (image file,
// reopened files) until commit consumes them or release drops them.
type thawPlan struct {
	proc   *imgfmt.Process
	image  *imageSource
	retval uintptr

	// maps holds, per entry of proc.Mappings, the reopened file of a MapReference mapping.
	maps []preparedMapping
	// chain is the opened chain of an incremental image, nil for a complete one (thaw_incr.go).
	chain *openedChain
	// files are the fds to install (each fd once; fds that are not objects first).
	files []preparedFile
	// objects holds, per entry of proc.Objects, the rebuilt object (thaw_objects.go).
	objects []*thawedObject
	// mapOwners maps the start of each MapObject mapping to the index of its object (built on
	// first use by mapObject).
	mapOwners map[uint64]int
	// keepNone is set when the thaw got an inherit map: the caller keeps none of its fds (not even
	// 0–2); every fd comes from the image or from the map.
	keepNone bool
	// exe is the reopened executable, or nil (then the image file stands in, as DragonFly's textvp).
	exe *preparedExe
	// cwd is the looked-up working directory (a reference is held), or empty if the image has none.
	cwd vfs.VirtualDentry

	// newTIDs maps each thread's TID in the image to its new TID, once resumeThreads made them.
	newTIDs map[int32]kernel.ThreadID
	// agents holds, by recorded tid, the thread agents that become the image's threads with
	// their own ids (thaw_tree_tids.go); set only for an in-place thaw.
	agents map[int32]*restoreNode
	// stopSignal, if not 0, is the group stop a tree restore brings the process back in
	// (thaw_tree_stopped.go).
	stopSignal linux.Signal
	// ctl is the control that resumes the committing thread as the image's first thread, set by
	// resumeThreads (an in-place thaw returns it from its syscall).
	ctl *kernel.SyscallControl
	// inPlace is set for a thaw without exec (thread agents, or a shared fd table); fdShare and
	// fdOwner say whether the fd table is shared and whether this thaw installs it
	// (thaw_tree_files.go).
	inPlace bool
	fdShare *filesShare
	fdOwner bool

	// start is when the thaw syscall began, prepared when validation and preparation ended (for
	// the log line that reports the thaw's cost).
	start, prepared time.Time
}

// prepareThaw decodes and validates the image and reopens everything it refers to.
//
// Preconditions: running on t's task goroutine.
func prepareThaw(t *kernel.Task, req thawRequest) (*thawPlan, error) {
	src, proc, err := openImage(t, req.file)
	if err != nil {
		return nil, err
	}
	plan := &thawPlan{proc: proc, image: src, retval: req.retval, keepNone: req.inherit != nil}
	ok := false
	defer func() {
		if !ok {
			plan.release(t)
		}
	}()
	if err := checkThreads(proc); err != nil {
		return nil, err
	}
	if err := checkAddressSpace(t, proc); err != nil {
		return nil, err
	}
	if err := checkVDSO(t, proc); err != nil {
		return nil, err
	}
	if err := checkLimits(t, proc); err != nil {
		return nil, err
	}
	if err := checkHostile(proc); err != nil { // thaw_hostile.go
		return nil, err
	}
	if err := checkCommitValues(t, proc); err != nil { // thaw_hostile.go
		return nil, err
	}
	if err := checkImageMappable(t, proc, src.file); err != nil {
		return nil, err
	}
	if plan.maps, err = prepareMappings(t, proc); err != nil {
		return nil, err
	}
	if plan.chain, err = prepareChain(t, proc, src); err != nil {
		return nil, err
	}
	if plan.files, plan.objects, err = prepareFiles(t, proc, req.file, req.inherit, req.share); err != nil {
		return nil, err
	}
	if plan.cwd, err = prepareCwd(t, proc); err != nil {
		return nil, err
	}
	plan.exe = prepareExe(t, proc)
	ok = true
	return plan, nil
}

// release drops every reference the plan holds.
func (p *thawPlan) release(t *kernel.Task) {
	for i := range p.maps {
		p.maps[i].release(t)
	}
	p.chain.release(t)
	for i := range p.files {
		p.files[i].release(t)
	}
	for _, o := range p.objects {
		if o != nil {
			o.release(t)
		}
	}
	if p.exe != nil {
		p.exe.release(t)
	}
	if p.cwd.Ok() {
		p.cwd.DecRef(t)
		p.cwd = vfs.VirtualDentry{}
	}
	if p.image != nil {
		p.image.release(t)
	}
}

// thawCommit is the task work that turns the freshly exec'd caller into the frozen process.
type thawCommit struct {
	plan *thawPlan
	// before is the caller's address space before the exec. Only compared: if the task still has
	// it, the exec failed (its errno is the syscall's result) and the thaw is abandoned.
	before *mm.MemoryManager
}

// TaskWork implements kernel.TaskWorker. It runs on the task goroutine before the task next returns
// to user mode: right after the exec, or after the failed exec's syscall returned its error.
func (c *thawCommit) TaskWork(t *kernel.Task) {
	defer c.plan.release(t)
	if t.MemoryManager() == c.before {
		t.Infof("ckpt: thaw abandoned: the exec of the caller's executable failed; the caller keeps running")
		return
	}
	committing := time.Now()
	if err := c.plan.commit(t); err != nil {
		t.Warningf("ckpt: thaw failed after the point of no return, killing the process: %v", err)
		t.ThreadGroup().SendSignal(&linux.SignalInfo{Signo: int32(linux.SIGKILL)})
		return
	}
	c.plan.logThawed(t, committing)
}

// logThawed logs what the thaw of p cost; committing is when its commit began (after the exec,
// or after the wait for the restore's own threads of an in-place thaw).
func (p *thawPlan) logThawed(t *kernel.Task, committing time.Time) {
	var content uint64
	for i := range p.proc.Mappings {
		if p.proc.Mappings[i].Kind == imgfmt.MapContent {
			content += p.proc.Mappings[i].End - p.proc.Mappings[i].Start
		}
	}
	t.Infof("ckpt: thawed %q (%d threads, %d of them at their ids by thread agents, %d mappings, %d MiB content, %d fds, streamed=%t) in %v: prepare %v, exec (or wait for the restore's threads) %v, commit %v",
		p.proc.Info.Name, len(p.proc.Threads), len(p.agents), len(p.proc.Mappings), content>>20, len(p.files), p.image.streamed,
		time.Since(p.start), p.prepared.Sub(p.start), committing.Sub(p.prepared), time.Since(committing))
}

// commit replaces the address space, fds, signal state and registers of t's process.
//
// Preconditions: running on t's task goroutine, t is the only task of its process, t has just
// exec'd (fresh address space, nothing of the image in it yet).
func (p *thawPlan) commit(t *kernel.Task) (err error) {
	if p.fdShare != nil && p.fdOwner {
		// However the commit ends, the group's other thaws must not wait for ever.
		defer func() { p.fdShare.done(err != nil) }()
	}
	proc := p.proc
	if err := clearAddressSpace(t); err != nil {
		return fmt.Errorf("clearing the address space: %w", err)
	}
	if err := moveVDSO(t, proc.VM.VDSOBase); err != nil {
		return fmt.Errorf("moving the vDSO: %w", err)
	}
	if err := p.mapMemory(t); err != nil {
		return fmt.Errorf("mapping memory: %w", err)
	}
	p.restoreMetadata(t)
	if err := p.installSharedTable(t); err != nil { // thaw_tree_files.go
		return fmt.Errorf("installing files: %w", err)
	}
	if err := p.commitObjects(t); err != nil {
		return fmt.Errorf("restoring objects: %w", err)
	}
	p.restoreCwd(t)
	p.restoreSession(t) // thaw_session.go
	discardThawerSignals(t)
	if err := restoreSignals(t, proc); err != nil {
		return fmt.Errorf("restoring signal state: %w", err)
	}
	if err := p.waitSharedTable(t); err != nil {
		return err
	}
	if err := p.resumeThreads(t); err != nil {
		return err
	}
	if err := p.objectsAfterThreads(t); err != nil {
		return err
	}
	return p.sendTimerQueues(t)
}
