package imgfmt

import "fmt"

// PipeObject is an anonymous pipe or a named FIFO (ObjPipe) with the bytes buffered in it at the
// freeze. Its descriptions are the process's ends: each description's access mode (the status
// flags of its fds) says whether it reads, writes or both. Body layout: u32 flags (bit 0: named,
// reopened by the path of its fds' handles), u32 capacity (F_GETPIPE_SZ, bytes), u32 data length,
// u32 reserved, then the data bytes (unpadded; they end the descriptor).
type PipeObject struct {
	// Named is set for a named FIFO that a thaw reopens by the path of its first fd's handle; an
	// anonymous pipe (or a FIFO already unlinked at the freeze) is rebuilt as a new pipe.
	Named bool
	// Capacity is the pipe's buffer size in bytes (F_GETPIPE_SZ).
	Capacity uint32
	// Data holds the unread bytes, oldest first (at most Capacity).
	Data []byte `json:"-"`
}

const (
	pipeNamed = 1 << 0
	// minPipeCapacity is the smallest pipe buffer Linux allows (one page).
	minPipeCapacity = PageSize
)

// Kind implements ObjectBody.
func (*PipeObject) Kind() ObjectKind { return ObjPipe }

func (p *PipeObject) encode(w *wbuf) {
	var flags uint32
	if p.Named {
		flags |= pipeNamed
	}
	w.u32(flags)
	w.u32(p.Capacity)
	w.u32(uint32(len(p.Data)))
	w.u32(0)
	w.bytes(p.Data)
}

func decodePipe(r *rbuf) ObjectBody {
	p := &PipeObject{}
	flags := r.u32()
	if r.err == nil && flags&^pipeNamed != 0 {
		r.off -= 4
		r.fail("pipe: unknown flags %#x", flags)
	}
	p.Named = flags&pipeNamed != 0
	p.Capacity = r.u32()
	n := r.u32()
	r.zero(4, "reserved")
	if r.err == nil && (n > MaxObjectData || int64(n) > int64(len(r.b)-r.off)) {
		r.off -= 8
		r.fail("pipe: %d data bytes do not fit in the note", n)
	}
	if r.err == nil && n > 0 {
		p.Data = append([]byte(nil), r.take(int(n))...)
	}
	return p
}

func (p *PipeObject) describe() string {
	what := "anonymous"
	if p.Named {
		what = "named"
	}
	return fmt.Sprintf("%s, capacity %d, %d bytes buffered", what, p.Capacity, len(p.Data))
}

func (p *PipeObject) check(proc *Process, o *Object) string {
	switch {
	case p.Capacity < minPipeCapacity || p.Capacity > MaxObjectData:
		return fmt.Sprintf("capacity %d outside [%d, %d]", p.Capacity, minPipeCapacity, MaxObjectData)
	case uint64(len(p.Data)) > uint64(p.Capacity):
		return fmt.Sprintf("%d bytes buffered exceed the capacity %d", len(p.Data), p.Capacity)
	}
	for _, f := range o.FDs {
		i := proc.fileIndex(f.FD)
		if i < 0 {
			continue // validateObjects reports it.
		}
		file := &proc.Files[i]
		if file.Kind != FileFIFO {
			return fmt.Sprintf("fd %d is not a pipe", f.FD)
		}
		if p.Named && f.FD == o.FDs[0].FD && file.Handle == nil {
			return fmt.Sprintf("fd %d of a named FIFO has no handle to reopen it by", f.FD)
		}
	}
	return ""
}
