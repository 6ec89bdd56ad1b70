package ckpt

import (
	"gvisor.dev/gvisor/pkg/sentry/vfs"
	"gvisor.dev/gvisor/pkg/waiter"
)

// readyWaiter is the wait of a loop that writes an image into, or reads one from, a file that
// may be a pipe or socket (fileSink.Write, treeWriter.Write, fileReader.Read). After an operation
// that would block, the loop calls wait: the first call registers for the file's readiness and
// returns at once, so that the loop retries once (a wake-up between the failed operation and the
// registration is not lost); each later call waits, in the way the loop's block function says,
// for the readiness notification before the next try. The loop never retries on a readiness
// check alone: a message socket's readiness and its writes disagree (writable while a quarter of
// its queue is free, a message taken only whole), and a loop that trusted readiness spun for ever
// (docs/fuzzing.md, finding 5). release unregisters; the zero value with f and mask set is ready.
type readyWaiter struct {
	f    *vfs.FileDescription
	mask waiter.EventMask
	// entry and ch are set by the first wait.
	entry waiter.Entry
	ch    chan struct{}
}

// wait registers for readiness on its first call and returns; later calls return block(ch),
// where ch receives the file's readiness notifications.
func (w *readyWaiter) wait(block func(ch <-chan struct{}) error) error {
	if w.ch == nil {
		// The entry registered is w's own: an entry is a node of the file's wait queue, and
		// unregistering a copy of it would not take the registered one out (it did, once: the
		// freezes into pipes hung).
		var ch chan struct{}
		w.entry, ch = waiter.NewChannelEntry(w.mask)
		if err := w.f.EventRegister(&w.entry); err != nil {
			return err
		}
		w.ch = ch
		return nil
	}
	return block(w.ch)
}

// release unregisters what wait registered, if anything.
func (w *readyWaiter) release() {
	if w.ch != nil {
		w.f.EventUnregister(&w.entry)
		w.ch = nil
	}
}
