package imgfmt

import "fmt"

// EpollObject is an epoll instance (ObjEpoll) with its interest list. Body layout: u32 count, u32
// dropped, then count interests of 24 bytes: i32 fd, i32 num, u32 events, u32 reserved, u64 data.
type EpollObject struct {
	// Interests are sorted by (FD, Num).
	Interests []EpollInterest
	// Dropped counts the interests on files that no fd of the process referred to at the freeze
	// (the fd was closed while another process kept the file open): they are not restored.
	Dropped uint32
}

// EpollInterest is one entry of an epoll interest list.
type EpollInterest struct {
	// FD is an fd of the process whose file the interest watches (the lowest such fd above 2, else
	// the lowest).
	FD int32
	// Num is the fd number the interest was registered with (part of epoll's key); it differs
	// from FD when the fd was dup'd and the registered number closed.
	Num int32
	// Events is the event mask with its flags (EPOLLET, EPOLLONESHOT, EPOLLEXCLUSIVE, ...).
	Events uint32
	// Data is the epoll_event data returned with each event.
	Data uint64
}

// epollInterestSize is the size of one interest in the body.
const epollInterestSize = 24

// Kind implements ObjectBody.
func (*EpollObject) Kind() ObjectKind { return ObjEpoll }

func (e *EpollObject) encode(w *wbuf) {
	w.u32(uint32(len(e.Interests)))
	w.u32(e.Dropped)
	for _, in := range e.Interests {
		w.i32(in.FD)
		w.i32(in.Num)
		w.u32(in.Events)
		w.u32(0)
		w.u64(in.Data)
	}
}

func decodeEpoll(r *rbuf) ObjectBody {
	e := &EpollObject{}
	n := r.u32()
	e.Dropped = r.u32()
	if r.err == nil && (n > MaxFDs || int64(n)*epollInterestSize > int64(len(r.b)-r.off)) {
		r.off -= 8
		r.fail("epoll: %d interests do not fit in the note", n)
	}
	for i := 0; r.err == nil && i < int(n); i++ {
		in := EpollInterest{FD: r.i32(), Num: r.i32(), Events: r.u32()}
		r.zero(4, "reserved")
		in.Data = r.u64()
		e.Interests = append(e.Interests, in)
	}
	return e
}

func (e *EpollObject) describe() string {
	s := fmt.Sprintf("%d interests", len(e.Interests))
	for _, in := range e.Interests {
		s += fmt.Sprintf(" [fd %d", in.FD)
		if in.Num != in.FD {
			s += fmt.Sprintf(" as %d", in.Num)
		}
		s += fmt.Sprintf(" events %#x data %#x]", in.Events, in.Data)
	}
	if e.Dropped > 0 {
		s += fmt.Sprintf(", %d dropped (file in no fd)", e.Dropped)
	}
	return s
}

func (e *EpollObject) check(p *Process, o *Object) string {
	if o.Descs() > 1 {
		return "an epoll instance has one open file description"
	}
	own := make(map[int32]bool)
	for _, f := range o.FDs {
		own[f.FD] = true
		if i := p.fileIndex(f.FD); i >= 0 && p.Files[i].Kind != FileOther {
			return fmt.Sprintf("fd %d is not an epoll instance", f.FD)
		}
	}
	for i, in := range e.Interests {
		switch {
		case p.fileIndex(in.FD) < 0:
			return fmt.Sprintf("interest %d: fd %d is not an fd of the process", i, in.FD)
		case own[in.FD]:
			return fmt.Sprintf("interest %d: the instance watches itself (fd %d)", i, in.FD)
		case in.Num < 0 || in.Num >= MaxFDs:
			return fmt.Sprintf("interest %d: fd number %d out of range", i, in.Num)
		}
		if i > 0 {
			prev := e.Interests[i-1]
			if in.FD < prev.FD || in.FD == prev.FD && in.Num <= prev.Num {
				return fmt.Sprintf("interest %d (fd %d as %d) is not above the previous one (fd %d as %d)", i, in.FD, in.Num, prev.FD, prev.Num)
			}
		}
	}
	return ""
}
