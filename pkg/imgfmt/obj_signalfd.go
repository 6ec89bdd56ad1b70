package imgfmt

import "fmt"

// SignalFDObject is a signalfd (ObjSignalFD). Body layout: u64 mask (bit n-1: signal n).
type SignalFDObject struct {
	// Mask is the set of signals the signalfd accepts.
	Mask uint64
}

// Kind implements ObjectBody.
func (*SignalFDObject) Kind() ObjectKind { return ObjSignalFD }

func (e *SignalFDObject) encode(w *wbuf) { w.u64(e.Mask) }

func decodeSignalFD(r *rbuf) ObjectBody { return &SignalFDObject{Mask: r.u64()} }

func (e *SignalFDObject) describe() string { return fmt.Sprintf("mask %#x", e.Mask) }

func (e *SignalFDObject) check(p *Process, o *Object) string {
	if o.Descs() > 1 {
		return "a signalfd has one open file description"
	}
	for _, f := range o.FDs {
		if i := p.fileIndex(f.FD); i >= 0 && p.Files[i].Kind != FileOther {
			return fmt.Sprintf("fd %d is not a signalfd", f.FD)
		}
	}
	return ""
}
