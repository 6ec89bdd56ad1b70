package ckpt

import (
	"sync"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/ckptabi"
	"gvisor.dev/gvisor/pkg/context"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/log"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/vfs"
)

// CKPT_FREEZE_ASYNC and CKPT_WAIT (docs/abi.md): a program that checkpoints itself periodically
// asks for an image and goes on as soon as the snapshot is taken; the image is written in the
// background, and CKPT_WAIT waits for (or polls) the images the process asked for and reports the
// first failure.

// asyncState is what CKPT_WAIT reports for one process: the background writes it started that are
// not over, and the first error among those that ended since the last report.
type asyncState struct {
	pending int
	err     error
	// idle is closed (and replaced) whenever pending drops to 0.
	idle chan struct{}
}

// asyncWrites holds the asyncState of each process with background writes pending or a failure
// not reported yet. An entry goes away when it has nothing to report.
var asyncWrites = &asyncRegistry{m: make(map[*kernel.ThreadGroup]*asyncState)}

// asyncRegistry is the type of asyncWrites (a named type: checklocks reads its annotations).
type asyncRegistry struct {
	mu sync.Mutex
	// +checklocks:mu
	m map[*kernel.ThreadGroup]*asyncState
}

// asyncStart records a background write started by tg and returns the function that records its
// end with its error.
func asyncStart(tg *kernel.ThreadGroup) func(error) {
	asyncWrites.mu.Lock()
	defer asyncWrites.mu.Unlock()
	st := asyncWrites.m[tg]
	if st == nil {
		st = &asyncState{idle: make(chan struct{})}
		asyncWrites.m[tg] = st
	}
	st.pending++
	return func(err error) {
		asyncWrites.mu.Lock()
		defer asyncWrites.mu.Unlock()
		if err != nil && st.err == nil {
			st.err = err
		}
		st.pending--
		if st.pending == 0 {
			close(st.idle)
			st.idle = make(chan struct{})
			if st.err == nil && asyncWrites.m[tg] == st {
				delete(asyncWrites.m, tg)
			}
		}
	}
}

// asyncStatus returns tg's pending count, takes its unreported error if nothing is pending any
// more, and returns the channel that is closed when pending next drops to 0.
func asyncStatus(tg *kernel.ThreadGroup) (pending int, err error, idle <-chan struct{}) {
	asyncWrites.mu.Lock()
	defer asyncWrites.mu.Unlock()
	st := asyncWrites.m[tg]
	if st == nil {
		return 0, nil, nil
	}
	if st.pending == 0 {
		err = st.err
		delete(asyncWrites.m, tg)
		return 0, err, nil
	}
	return st.pending, nil, st.idle
}

// freezeAsync implements CKPT_FREEZE_ASYNC: req's process is captured and snapshotted as for
// CKPT_FREEZE, then every thread runs on (the caller returns) while a background goroutine writes
// the image into req.file, or into the ckpt-file renamed into place when complete. When no snapshot
// can be taken (shared content mappings, MADV_DONTFORK, --ckpt-background=0), it writes the image
// before returning, exactly as CKPT_FREEZE. The outcome of a background write is reported by
// CKPT_WAIT.
//
// Errors: those of CKPT_FREEZE, plus EAGAIN when --ckpt-background images are being written
// already.
//
// Preconditions: running on t's task goroutine; req was validated by newFreezeRequest.
func freezeAsync(t *kernel.Task, req freezeRequest) error {
	var c *ckptFile
	if req.file == nil {
		var err error
		if c, err = createCkptFile(t, req.policy); err != nil {
			return syscallError(t, err)
		}
	}
	var (
		pi  *pendingImage
		err error
	)
	if req.self {
		pi, err = capturePending(t, captureRequest{at: inCheckpointSyscall, image: req.file}, snapBackground)
	} else {
		var w *remoteFreeze
		pi, w, err = captureOther(t, req)
		if w != nil {
			defer close(w.written)
		}
	}
	if err != nil {
		if c != nil {
			err = c.finish(t, err)
		}
		return syscallError(t, err)
	}
	if !pi.background() {
		// Written here, with the process (or, for the caller's own process, its other threads)
		// stopped.
		if c != nil {
			return syscallError(t, c.finish(t, pi.write(t, newFileSink(t, c.file))))
		}
		sink := newFileSink(t, req.file)
		return syscallError(t, sink.undoIfFailed(pi.write(t, sink)))
	}
	ctx := newBackgroundContext(t)
	done := asyncStart(t.ThreadGroup())
	pid := pi.p.Info.PID
	if c != nil {
		tg := t.ThreadGroup()
		prev, order := enterOrder(tg)
		goDetached(func() {
			defer leaveOrder(tg, order)
			err := pi.write(ctx, newBackgroundSink(ctx, c.file))
			if prev != nil {
				<-prev
			}
			done(logAsync(pid, c.finish(ctx, err)))
		})
		return nil
	}
	file := req.file
	file.IncRef()
	goDetached(func() {
		done(logAsync(pid, writeToFile(ctx, pi, file)))
	})
	return nil
}

// writeToFile writes pi into file at its offset from a background goroutine, removes a partial
// image from a regular file on failure, and drops the caller's reference on file.
func writeToFile(ctx context.Context, pi *pendingImage, file *vfs.FileDescription) error {
	defer file.DecRef(ctx)
	sink := newBackgroundSink(ctx, file)
	return sink.undoIfFailed(pi.write(ctx, sink))
}

// logAsync logs the end of a background write of pid's image and returns err.
func logAsync(pid int32, err error) error {
	if err != nil {
		log.Warningf("ckpt: background write of the image of pid %d failed: %v", pid, err)
	}
	return err
}

// CKPT_WAIT flags.
const (
	// CKPT_WAIT_NOHANG makes CKPT_WAIT return the number of images still being written (> 0)
	// instead of waiting for them.
	CKPT_WAIT_NOHANG int32 = ckptabi.CKPT_WAIT_NOHANG
)

// ckptWait implements sys_checkpoint(CKPT_WAIT, -1, -1, flags): it waits until every image the
// calling process started with CKPT_FREEZE_ASYNC is written, and returns 0, or fails with the errno
// of the first write that failed since the last CKPT_WAIT (each failure is reported once). With
// CKPT_WAIT_NOHANG it returns the number of writes still running instead of waiting, if any.
//
// Errors: EINVAL for a bad fd, pid or flag; EINTR/ERESTARTSYS when a signal interrupts the wait.
//
// Preconditions: running on t's task goroutine.
func ckptWait(t *kernel.Task, fd, pid, flags int32) (uintptr, error) {
	if fd != -1 || pid != -1 || flags&^CKPT_WAIT_NOHANG != 0 {
		return 0, linuxerr.EINVAL
	}
	for {
		pending, err, idle := asyncStatus(t.ThreadGroup())
		if pending == 0 {
			if err != nil {
				return 0, sysErrno(errnoFreeze, err)
			}
			return 0, nil
		}
		if flags&CKPT_WAIT_NOHANG != 0 {
			return uintptr(pending), nil
		}
		if err := t.Block(idle); err != nil {
			return 0, linuxerr.ERESTARTSYS
		}
	}
}
