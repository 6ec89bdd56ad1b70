package ckpt

import (
	"fmt"
	"sync"

	"gvisor.dev/gvisor/pkg/context"
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
	"gvisor.dev/gvisor/pkg/sentry/kernel/auth"
)

// Background writes: an image whose process runs on while it is written holds a copy-on-write
// snapshot, which costs the pages the process dirties meanwhile. Their number is capped by
// Policy.Background (--ckpt-background); a freeze that would exceed it fails with EAGAIN before
// anything is stopped.

// slotCounter is the type of slots (a named type: checklocks reads its annotations).
type slotCounter struct {
	mu sync.Mutex
	// +checklocks:mu
	n int
}

// slots counts the background writes in progress.
var slots = &slotCounter{}

// errBackgroundFull is the error of a freeze refused because Policy.Background images are being
// written in the background already. It is read-only; checklocks infers a lock for it because
// acquireSlot only ever reads it holding slots.mu, and the annotation absorbs that hint (doc.go).
var errBackgroundFull = fmt.Errorf("too many checkpoint images are being written in the background (--ckpt-background): %w", linuxerr.EAGAIN) // +checklocksfail:1=may require checklocks annotation for mu

// acquireSlot takes a background slot if one is free under the current policy. It returns false
// and errBackgroundFull when all are taken, false and nil when the policy allows none (background
// writing is off: every image is written with its process stopped).
func acquireSlot() (bool, error) {
	limit := int(CurrentPolicy().Background)
	if limit == 0 {
		return false, nil
	}
	slots.mu.Lock()
	defer slots.mu.Unlock()
	if slots.n >= limit {
		return false, errBackgroundFull
	}
	slots.n++
	return true, nil
}

// releaseSlot gives a slot back.
func releaseSlot() {
	slots.mu.Lock()
	defer slots.mu.Unlock()
	slots.n--
}

// backgroundContext is the context of a write that runs on no task goroutine: the kernel's
// supervisor context with the frozen process's credentials, so that the image file is written
// (and renamed) as the process would.
type backgroundContext struct {
	context.Context
	creds *auth.Credentials
}

// Value implements context.Context.
func (c backgroundContext) Value(key any) any {
	if key == auth.CtxCredentials {
		return c.creds
	}
	return c.Context.Value(key)
}

// newBackgroundContext returns the context for writing t's image off its task goroutine.
func newBackgroundContext(t *kernel.Task) context.Context {
	return backgroundContext{Context: t.Kernel().SupervisorContext(), creds: t.Credentials()}
}

// ckptFileOrder keeps the ckpt-file images of one process in the order of their snapshots: each
// background write waits for the one before it (of the same process) before it renames its image
// into place, so a slower earlier write never replaces a later image. Entries are removed when the
// newest write of a process is over.
var ckptFileOrder = &fileOrderRegistry{last: make(map[*kernel.ThreadGroup]chan struct{})}

// fileOrderRegistry is the type of ckptFileOrder (a named type: checklocks reads its annotations).
type fileOrderRegistry struct {
	mu sync.Mutex
	// +checklocks:mu
	last map[*kernel.ThreadGroup]chan struct{}
}

// enterOrder registers a new background write of tg's ckpt-file and returns the channel of the
// previous one (nil if none), which the write waits for before renaming, and done, which it must
// pass to leaveOrder.
func enterOrder(tg *kernel.ThreadGroup) (prev <-chan struct{}, done chan struct{}) {
	done = make(chan struct{})
	ckptFileOrder.mu.Lock()
	defer ckptFileOrder.mu.Unlock()
	if p, ok := ckptFileOrder.last[tg]; ok {
		prev = p
	}
	ckptFileOrder.last[tg] = done
	return prev, done
}

// leaveOrder ends a background write registered by enterOrder.
func leaveOrder(tg *kernel.ThreadGroup, done chan struct{}) {
	ckptFileOrder.mu.Lock()
	defer ckptFileOrder.mu.Unlock()
	if ckptFileOrder.last[tg] == done {
		delete(ckptFileOrder.last, tg)
	}
	close(done)
}
