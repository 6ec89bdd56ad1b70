package imgfmt

import "fmt"

// EventFDObject is an eventfd (ObjEventFD): its counter and mode. Body layout: u64 count, u32 flags
// (bit 0: EFD_SEMAPHORE), u32 reserved.
type EventFDObject struct {
	Count     uint64
	Semaphore bool
}

const eventFDSemaphore = 1 << 0

// Kind implements ObjectBody.
func (*EventFDObject) Kind() ObjectKind { return ObjEventFD }

func (e *EventFDObject) encode(w *wbuf) {
	w.u64(e.Count)
	var flags uint32
	if e.Semaphore {
		flags |= eventFDSemaphore
	}
	w.u32(flags)
	w.u32(0)
}

func decodeEventFD(r *rbuf) ObjectBody {
	e := &EventFDObject{Count: r.u64()}
	flags := r.u32()
	if r.err == nil && flags&^eventFDSemaphore != 0 {
		r.off -= 4
		r.fail("eventfd: unknown flags %#x", flags)
	}
	e.Semaphore = flags&eventFDSemaphore != 0
	r.zero(4, "reserved")
	return e
}

// maxEventFDCount is the largest value an eventfd counter holds (Linux: 2^64-2).
const maxEventFDCount = ^uint64(0) - 1

func (e *EventFDObject) describe() string {
	if e.Semaphore {
		return fmt.Sprintf("count %d, semaphore", e.Count)
	}
	return fmt.Sprintf("count %d", e.Count)
}

func (e *EventFDObject) check(p *Process, o *Object) string {
	if e.Count > maxEventFDCount {
		return "count exceeds 2^64-2"
	}
	if o.Descs() > 1 {
		return "an eventfd has one open file description"
	}
	for _, f := range o.FDs {
		if i := p.fileIndex(f.FD); i >= 0 && p.Files[i].Kind != FileEventFD {
			return "fd is not an eventfd"
		}
	}
	return ""
}
