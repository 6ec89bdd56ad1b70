package imgfmt

import (
	"encoding/binary"
	"fmt"
)

// PendingSignalsObject holds the exact siginfo of the signals pending on the thread group and on
// the image's first thread (ObjPendingSignals; process-wide, no fds, at most one per image);
// docs/notes-thaw.md "Pending signals". Body layout: 0 count u32, 4 reserved u32, then count ×
// 128 bytes: a Linux siginfo_t (0 si_signo i32, 4 si_errno i32, 8 si_code i32, then the union as
// the kernel lays it out), in the order they were queued per signal number. A thaw sends these
// instead of a minimal siginfo for the signals they cover.
type PendingSignalsObject struct {
	Infos [][SigInfoSize]byte
}

// SigInfoSize is the size of a siginfo_t.
const SigInfoSize = 128

// maxPendingSignals bounds the infos of one image: 64 signals × 32 queued instances (gVisor's cap
// for a real-time signal) × 2 queues (thread and group).
const maxPendingSignals = 64 * 32 * 2

// Kind implements ObjectBody.
func (*PendingSignalsObject) Kind() ObjectKind { return ObjPendingSignals }

// Signo returns the signal number of info.
func (o *PendingSignalsObject) Signo(i int) int32 {
	return int32(binary.LittleEndian.Uint32(o.Infos[i][0:4]))
}

func (o *PendingSignalsObject) encode(w *wbuf) {
	w.u32(uint32(len(o.Infos)))
	w.u32(0)
	for i := range o.Infos {
		w.bytes(o.Infos[i][:])
	}
}

func decodePendingSignals(r *rbuf) ObjectBody {
	n := r.u32()
	r.zero(4, "reserved")
	o := &PendingSignalsObject{}
	if r.err == nil && (n > maxPendingSignals || int64(n)*SigInfoSize != int64(len(r.b)-r.off)) {
		r.fail("pending signals: %d siginfos do not fill the note", n)
	}
	if r.err != nil || n == 0 {
		return o
	}
	o.Infos = make([][SigInfoSize]byte, n)
	for i := range o.Infos {
		copy(o.Infos[i][:], r.take(SigInfoSize))
	}
	return o
}

func (o *PendingSignalsObject) describe() string {
	s := fmt.Sprintf("%d siginfos:", len(o.Infos))
	for i := range o.Infos {
		code := int32(binary.LittleEndian.Uint32(o.Infos[i][8:12]))
		s += fmt.Sprintf(" [sig %d code %d]", o.Signo(i), code)
	}
	return s
}

func (o *PendingSignalsObject) check(p *Process, obj *Object) string {
	if len(obj.FDs) != 0 {
		return "pending signals have no fds"
	}
	for i := range p.Objects {
		if p.Objects[i].Kind() == ObjPendingSignals && &p.Objects[i] != obj {
			return "more than one pending-signals object"
		}
	}
	var pending uint64
	if len(p.Threads) > 0 {
		pending = p.Signals.Pending | p.Threads[0].SigPending
	}
	for i := range o.Infos {
		s := o.Signo(i)
		if s < 1 || s > 64 || s == 9 || s == 19 {
			return fmt.Sprintf("siginfo %d: signal %d", i, s)
		}
		if pending&(1<<(s-1)) == 0 {
			return fmt.Sprintf("siginfo %d: signal %d is not pending", i, s)
		}
	}
	return ""
}
