package ckpt

import (
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// captureProcessObjects appends the process-wide objects (no fds) to p.Objects: POSIX timers, the
// exact siginfo of pending signals, SysV semaphore sets and message queues, and the process
// attributes. Each gets the next id.
//
// Preconditions: running on t's task goroutine, the process's other threads stopped, p.Threads
// captured.
func captureProcessObjects(t *kernel.Task, p *imgfmt.Process) error {
	timers, err := capturePosixTimers(t, p)
	if err != nil {
		return err
	}
	sysv, err := captureSysV(t)
	if err != nil {
		return err
	}
	pend, err := capturePendingSignals(t, p)
	if err != nil {
		return err
	}
	if pend != nil {
		timers = append(timers, pend)
	}
	timers = append(timers, sysv...)
	attrs, err := captureProcessAttrsObject(t, p)
	if err != nil {
		return err
	}
	if attrs != nil {
		timers = append(timers, attrs)
	}
	for _, b := range timers {
		p.Objects = append(p.Objects, imgfmt.Object{ID: uint32(len(p.Objects) + 1), Body: b})
	}
	return nil
}
