package ckpt

import (
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/context"
	"gvisor.dev/gvisor/pkg/gomaxprocs"
	"gvisor.dev/gvisor/pkg/log"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/mm"
)

// A freeze is split in two: capturePending, on the frozen process's own task goroutine with its
// threads stopped, captures everything but the memory bytes and takes a copy-on-write snapshot of
// the address space; pendingImage.write then encodes the image from the snapshot, on whatever
// goroutine the route chooses, while the process runs on. docs/notes-pause.md explains the routes.

// snapMode says when capturePending takes a snapshot.
type snapMode int

const (
	// snapSiblings: the freezing thread writes the image itself (a self-freeze); a snapshot only
	// lets the other threads run on, so it is taken for a multi-threaded process only, and only
	// while a background slot is free (otherwise the siblings stay stopped: no error).
	snapSiblings snapMode = iota
	// snapBackground: the image is written by another goroutine and every thread should run on
	// at once. A snapshot is taken whatever the thread count; without a free background slot
	// capturePending fails with EAGAIN (errBackgroundFull) before stopping anything. When the
	// address space cannot be snapshotted (shared content mappings, MADV_DONTFORK), the process
	// stays stopped until its image is written, and so it does when the policy allows no
	// background writes (Policy.Background 0).
	snapBackground
	// snapNone: no snapshot; the process stays stopped until its image is written.
	snapNone
)

// pendingImage is a captured process whose image is still to be written.
type pendingImage struct {
	p *imgfmt.Process
	// stop holds the other threads of the process. Without a snapshot they stay stopped (and the
	// freezing thread must not return to user mode) until write; with one they run again.
	stop *siblingStop
	// snap is the copy-on-write snapshot the memory is read from, or nil.
	snap *mm.MemoryManager
	// live is the process's own address space, held (IncUsers) while the image is read from it
	// when there is no snapshot.
	live *mm.MemoryManager
	// slot reports whether the image holds a background slot (released by write).
	slot bool
	// detached is set when the process no longer depends on the write: every thread but the
	// freezing one runs again and the freeze is unregistered.
	detached bool
	// start is when the freeze began; captured how long the capture took; paused how long the
	// process's threads were stopped (set once they run again).
	start            time.Time
	captured, paused time.Duration
}

// capturePending captures t's process (captureProcess) and, as mode says, snapshots its memory and
// lets its threads run again: with snapBackground every thread, t included once it returns from
// its task work; with snapSiblings the others. The caller must call write exactly once.
//
// Errors: those of captureProcess; EAGAIN if mode is snapBackground and the number of background
// writes is at its limit (Policy.Background).
//
// Preconditions: running on t's task goroutine.
func capturePending(t *kernel.Task, req captureRequest, mode snapMode) (*pendingImage, error) {
	pi := &pendingImage{start: time.Now()}
	if mode == snapBackground {
		ok, err := acquireSlot()
		if err != nil {
			return nil, err
		}
		if pi.slot = ok; !ok {
			mode = snapNone
		}
	}
	p, stop, err := captureProcess(t, req)
	if err != nil {
		pi.releaseSlot()
		return nil, err
	}
	pi.p, pi.stop = p, stop
	pi.captured = time.Since(pi.start)
	switch mode {
	case snapSiblings:
		if len(p.Threads) > 1 {
			if pi.slot, _ = acquireSlot(); pi.slot {
				pi.snap = forkSnapshot(t, p)
			}
		}
	case snapBackground:
		pi.snap = forkSnapshot(t, p)
	}
	if pi.snap == nil {
		pi.releaseSlot()
		// The image is read from the live address space. Hold it, so that a process killed
		// while another goroutine writes its image does not take its memory away mid-image.
		if m := t.MemoryManager(); m.IncUsers() {
			pi.live = m
		}
		return pi, nil
	}
	if mode == snapSiblings {
		// The freeze stays registered while t writes: another freeze of the process waits for
		// it instead of interrupting t's write.
		stop.release()
	} else {
		stop.resume()
		pi.detached = true
	}
	pi.paused = time.Since(pi.start)
	return pi, nil
}

// background reports whether every thread of the process may run again, so that the image may be
// written on another goroutine while the freezing thread returns to user mode.
func (pi *pendingImage) background() bool { return pi.detached }

// write encodes the image into sink, reading memory with ctx (the writing task, or a background
// context), then drops the snapshot, lets any still stopped thread run and releases the
// background slot. It logs the freeze's figures.
func (pi *pendingImage) write(ctx context.Context, sink *fileSink) error {
	if pi.snap != nil {
		// Threads of the process run while this goroutine writes: it lends itself a P of its own,
		// as gVisor's aio workers do for their blocking host I/O (docs/notes-pause.md, "What the
		// write does to a running guest").
		gomaxprocs.Add(1)
		defer gomaxprocs.Add(-1)
	}
	for i := range pi.p.Mappings {
		if r, ok := pi.p.Mappings[i].Contents.(*memReader); ok {
			r.ctx = ctx
		}
	}
	err := imgfmt.Encode(sink, pi.p)
	var fromFile, lent, populated int64
	var viewTime, routeTime, populateTime time.Duration
	for i := range pi.p.Mappings {
		if r, ok := pi.p.Mappings[i].Contents.(*memReader); ok {
			fromFile += r.fromFile
			lent += r.lent
			populated += r.populated
			populateTime += r.populateTime
			viewTime += r.viewTime
			routeTime += r.routeTime
		}
	}
	pi.abandon(ctx)
	if err != nil {
		return err
	}
	paused := "whole freeze"
	if pi.paused != 0 {
		paused = pi.paused.String()
	}
	p := pi.p
	n, cost := viewRoutes.snapshot()
	log.Infof("ckpt: froze pid %d (%s): %d threads, %d mappings, %d fds, %d image bytes in %d writes (%d of memory read from the memory file, %d lent from its mapping, %d of them populated first; route costs pread %.2f ns/B over %d views, lend %.2f over %d; %v in views, %v of it in their routes; %v populating, %v in the image file's writes); capture %v, threads paused %s, total %v",
		p.Info.PID, p.Info.Name, len(p.Threads), len(p.Mappings), len(p.Files), sink.written, sink.writes, fromFile, lent, populated, cost[routePread], n[routePread], cost[routeLend], n[routeLend], viewTime.Round(time.Microsecond), routeTime.Round(time.Microsecond), populateTime.Round(time.Microsecond), sink.writeTime.Round(time.Microsecond), pi.captured, paused, time.Since(pi.start))
	return nil
}

// abandon drops the image's hold on the process (snapshot, address space, stopped threads,
// background slot); write calls it when the image is written, and a route calls it for an image
// that will not be written (the requester went away).
func (pi *pendingImage) abandon(ctx context.Context) {
	if pi.snap != nil {
		pi.snap.DecUsers(ctx)
		pi.snap = nil
	}
	if pi.live != nil {
		pi.live.DecUsers(ctx)
		pi.live = nil
	}
	pi.stop.resume()
	pi.releaseSlot()
}

// releaseSlot gives back the background slot, if the image holds one.
func (pi *pendingImage) releaseSlot() {
	if pi.slot {
		pi.slot = false
		releaseSlot()
	}
}
