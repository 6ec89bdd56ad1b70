package ckpt

import (
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/log"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// freezeToCkptFile writes the image of t's process to the ckpt-file named by the current policy
// (--ckpt-file, default "%N.ckpt", relative to the process's working directory), through a
// temporary file renamed into place once the image is complete, so that a failed freeze leaves no
// partial image. info is the triggering signal (recorded as NT_SIGINFO), or nil. The error is a
// Linux errno (linuxerr) suitable for logging or for a syscall return.
//
// It is the entry point for SIGCKPT/SIGCKPTEXIT. With background (SIGCKPT) the process is
// captured and snapshotted, every thread runs on at once, and the image is written on a goroutine
// of its own, which also creates the file (no file system round trip while the process is
// stopped); its outcome is logged. The images of one process are renamed into place in the order
// of their snapshots. Without background (SIGCKPTEXIT), or when no snapshot can be taken, the
// image is written before t returns, with the process stopped.
//
// Preconditions: running on t's task goroutine from task work (kernel.TaskWorker), i.e. at a return
// to user mode and not inside a syscall handler: the thread's registers are recorded as they will
// be when it resumes user code, with an interrupted syscall set up to restart.
func freezeToCkptFile(t *kernel.Task, info *imgfmt.SigInfo, background bool) error {
	// Only resolved here: with background the file is created by the writing goroutine, after
	// every thread runs again; otherwise once the process is captured (and stays stopped).
	c, err := resolveCkptFile(t, CurrentPolicy())
	if err != nil {
		return syscallError(t, err)
	}
	mode := snapBackground
	if !background {
		mode = snapNone
	}
	pi, err := capturePending(t, captureRequest{at: atUserBoundary, sigInfo: info}, mode)
	if err != nil {
		c.drop(t)
		return syscallError(t, err)
	}
	if !pi.background() {
		if err := c.create(t); err != nil {
			pi.abandon(t)
			return syscallError(t, err)
		}
		return syscallError(t, c.finish(t, pi.write(t, newFileSink(t, c.file))))
	}
	ctx := newBackgroundContext(t)
	tg, pid := t.ThreadGroup(), pi.p.Info.PID
	prev, done := enterOrder(tg)
	goDetached(func() {
		defer leaveOrder(tg, done)
		if err := c.create(ctx); err != nil {
			pi.abandon(ctx)
			if prev != nil {
				<-prev
			}
			log.Warningf("runsc-ckpt: background checkpoint of pid %d failed, no image: %v", pid, err)
			return
		}
		err := pi.write(ctx, newBackgroundSink(ctx, c.file))
		if prev != nil {
			<-prev
		}
		if err := c.finish(ctx, err); err != nil {
			log.Warningf("runsc-ckpt: background checkpoint of pid %d failed, no image: %v", pid, err)
			return
		}
		log.Infof("runsc-ckpt: background checkpoint of pid %d written to %q", pid, c.name)
	})
	return nil
}
