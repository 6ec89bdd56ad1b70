package ckpt

import (
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// Pending signals with their exact siginfo (issue 8 item 7; docs/notes-thaw.md "Pending signals").
// gVisor keeps queued siginfos in an unexported list guarded by the signal mutex, with no getter
// short of dequeuing: the freeze dequeues them (Sigtimedwait with a zero timeout, on the freezing
// thread: its own queue, then the thread group's) and queues them again at once, in the order
// taken — read and write back under the freeze. Signals that POSIX timers of the process send are
// left alone (dequeuing one would detach it from its timer, which would then queue another).

// capturePendingSignals returns the exact siginfos of the signals pending on t and its thread
// group, or nil if there are none. timers are the process's posix-timer objects.
//
// Preconditions: running on t's task goroutine, the process's other threads stopped, p.Signals
// and p.Threads captured (Threads[0] is t).
func capturePendingSignals(t *kernel.Task, p *imgfmt.Process, timers []imgfmt.ObjectBody) *imgfmt.PendingSignalsObject {
	if len(p.Threads) == 0 {
		return nil
	}
	skip := uint64(linux.SignalSetOf(linux.SIGKILL) | linux.SignalSetOf(linux.SIGSTOP))
	for _, b := range timers {
		if pt, ok := b.(*imgfmt.PosixTimerObject); ok && pt.Signo > 0 && pt.Signo <= linux.SignalMaximum {
			skip |= uint64(linux.SignalSetOf(linux.Signal(pt.Signo)))
		}
	}
	set := linux.SignalSet((p.Signals.Pending | p.Threads[0].SigPending) &^ skip)
	if set == 0 {
		return nil
	}
	var taken []*linux.SignalInfo
	for len(taken) < 64*32*2 {
		info, err := t.Sigtimedwait(set, 0)
		if err != nil {
			break
		}
		taken = append(taken, info)
	}
	o := &imgfmt.PendingSignalsObject{}
	for _, info := range taken {
		var b [imgfmt.SigInfoSize]byte
		info.MarshalBytes(b[:])
		o.Infos = append(o.Infos, b)
		sendPending(t, t, p.Signals.Pending, info)
	}
	if len(o.Infos) == 0 {
		return nil
	}
	return o
}

// sendPending queues info again: to the thread group if its signal is in groupPending, else to
// target.
func sendPending(t, target *kernel.Task, groupPending uint64, info *linux.SignalInfo) {
	bit := uint64(linux.SignalSetOf(linux.Signal(info.Signo)))
	var err error
	if groupPending&bit != 0 {
		err = t.ThreadGroup().SendSignal(info)
	} else {
		err = target.SendSignal(info)
	}
	if err != nil {
		t.Warningf("ckpt: queueing signal %d again: %v", info.Signo, err)
	}
}

// exactPending returns the siginfos of the image's pending-signals object, if any.
func exactPending(p *imgfmt.Process) []*linux.SignalInfo {
	for i := range p.Objects {
		if o, ok := p.Objects[i].Body.(*imgfmt.PendingSignalsObject); ok {
			infos := make([]*linux.SignalInfo, len(o.Infos))
			for j := range o.Infos {
				infos[j] = new(linux.SignalInfo)
				infos[j].UnmarshalBytes(o.Infos[j][:])
			}
			return infos
		}
	}
	return nil
}
