package imgfmt

import (
	"fmt"
	"strings"
)

// ProcAttrsObject holds the process attributes that are not identity (ObjProcAttrs, no fds; at
// most one per image). Supplementary groups are in the process note (Creds.Groups) and the parent
// death signal in the signals note. Body layout: 0 umask u32 (≤ 0777), 4 oom_score_adj i32
// (−1000…1000), 8 flags u32 (bit 0 PR_SET_CHILD_SUBREAPER, bit 1 membarrier
// REGISTER_PRIVATE_EXPEDITED done, bit 2 membarrier REGISTER_PRIVATE_EXPEDITED_RSEQ done), 12 nrseq
// u32, then nrseq rseq registrations of 24 bytes: 0 tid i32 (a thread of the image), 4 signature
// u32, 8 address u64 (32-byte aligned, in the user range), 16 length u32 (32), 20 reserved u32.
// With flags bit 3 (MADV_DONTFORK ranges) there follow: u32 nranges (≥ 1), u32 reserved, then
// nranges × (start u64, end u64), page-aligned, ascending, disjoint, not adjacent, each inside the
// image's mappings.
type ProcAttrsObject struct {
	Umask             uint32
	OOMScoreAdj       int32
	ChildSubreaper    bool
	MembarrierPrivate bool
	MembarrierRSeq    bool
	RSeq              []RSeqRegistration
	// DontFork are the address ranges marked MADV_DONTFORK (a child forked later does not get
	// them), merged and ascending; nil when none.
	DontFork []AddrRange
}

// AddrRange is an address range [Start, End).
type AddrRange struct {
	Start, End uint64
}

// RSeqRegistration is one thread's rseq(2) registration.
type RSeqRegistration struct {
	TID       int32
	Signature uint32
	Addr      uint64
	Length    uint32
}

const (
	attrsSubreaper         = 1 << 0
	attrsMembarrierPrivate = 1 << 1
	attrsMembarrierRSeq    = 1 << 2
	attrsDontFork          = 1 << 3
	attrsFlags             = attrsSubreaper | attrsMembarrierPrivate | attrsMembarrierRSeq | attrsDontFork
	rseqEntrySize          = 24
	addrRangeSize          = 16
	// RSeqSize is the size and alignment of struct rseq that rseq(2) registers.
	RSeqSize = 32
)

// Kind implements ObjectBody.
func (*ProcAttrsObject) Kind() ObjectKind { return ObjProcAttrs }

func (o *ProcAttrsObject) encode(w *wbuf) {
	w.u32(o.Umask)
	w.i32(o.OOMScoreAdj)
	var flags uint32
	if o.ChildSubreaper {
		flags |= attrsSubreaper
	}
	if o.MembarrierPrivate {
		flags |= attrsMembarrierPrivate
	}
	if o.MembarrierRSeq {
		flags |= attrsMembarrierRSeq
	}
	if len(o.DontFork) > 0 {
		flags |= attrsDontFork
	}
	w.u32(flags)
	w.u32(uint32(len(o.RSeq)))
	for _, r := range o.RSeq {
		w.i32(r.TID)
		w.u32(r.Signature)
		w.u64(r.Addr)
		w.u32(r.Length)
		w.u32(0)
	}
	if len(o.DontFork) > 0 {
		w.u32(uint32(len(o.DontFork)))
		w.u32(0)
		for _, a := range o.DontFork {
			w.u64(a.Start)
			w.u64(a.End)
		}
	}
}

func decodeProcAttrs(r *rbuf) ObjectBody {
	o := &ProcAttrsObject{Umask: r.u32(), OOMScoreAdj: r.i32()}
	flags := r.u32()
	if r.err == nil && flags&^attrsFlags != 0 {
		r.off -= 4
		r.fail("process-attributes: unknown flags %#x", flags)
	}
	o.ChildSubreaper = flags&attrsSubreaper != 0
	o.MembarrierPrivate = flags&attrsMembarrierPrivate != 0
	o.MembarrierRSeq = flags&attrsMembarrierRSeq != 0
	n := r.u32()
	if r.err == nil && (n > MaxThreads || int64(n)*rseqEntrySize > int64(len(r.b)-r.off)) {
		r.fail("%d rseq registrations do not fit in the note", n)
	}
	for i := 0; r.err == nil && i < int(n); i++ {
		o.RSeq = append(o.RSeq, RSeqRegistration{TID: r.i32(), Signature: r.u32(), Addr: r.u64(), Length: r.u32()})
		r.zero(4, "reserved")
	}
	if r.err != nil || flags&attrsDontFork == 0 {
		return o
	}
	n = r.u32()
	r.zero(4, "reserved")
	if r.err == nil && (n == 0 || n > MaxMappings || int64(n)*addrRangeSize > int64(len(r.b)-r.off)) {
		r.fail("%d MADV_DONTFORK ranges do not fit in the note", n)
	}
	for i := 0; r.err == nil && i < int(n); i++ {
		o.DontFork = append(o.DontFork, AddrRange{Start: r.u64(), End: r.u64()})
	}
	return o
}

func (o *ProcAttrsObject) describe() string {
	parts := []string{fmt.Sprintf("umask %04o", o.Umask), fmt.Sprintf("oom_score_adj %d", o.OOMScoreAdj)}
	if o.ChildSubreaper {
		parts = append(parts, "child subreaper")
	}
	if o.MembarrierPrivate {
		parts = append(parts, "membarrier private expedited")
	}
	if o.MembarrierRSeq {
		parts = append(parts, "membarrier rseq")
	}
	for _, r := range o.RSeq {
		parts = append(parts, fmt.Sprintf("rseq of thread %d at %#x signature %#x", r.TID, r.Addr, r.Signature))
	}
	for _, a := range o.DontFork {
		parts = append(parts, fmt.Sprintf("MADV_DONTFORK [%#x, %#x)", a.Start, a.End))
	}
	return strings.Join(parts, ", ")
}

func (o *ProcAttrsObject) check(p *Process, obj *Object) string {
	if len(obj.FDs) != 0 {
		return "process attributes have no fds"
	}
	for i := range p.Objects {
		if q := &p.Objects[i]; q != obj && q.Kind() == ObjProcAttrs {
			return "more than one process-attributes object"
		}
	}
	if o.Umask > 0o777 {
		return fmt.Sprintf("umask %#o", o.Umask)
	}
	if o.OOMScoreAdj < -1000 || o.OOMScoreAdj > 1000 {
		return fmt.Sprintf("oom_score_adj %d out of range", o.OOMScoreAdj)
	}
	seen := make(map[int32]bool)
	for _, r := range o.RSeq {
		if !p.HasThread(r.TID) || seen[r.TID] {
			return fmt.Sprintf("rseq of tid %d: not a thread of the process, or twice", r.TID)
		}
		seen[r.TID] = true
		if r.Length != RSeqSize || r.Addr%RSeqSize != 0 || r.Addr == 0 || r.Addr > MaxUserAddress-RSeqSize {
			return fmt.Sprintf("rseq of tid %d: address %#x or length %d invalid", r.TID, r.Addr, r.Length)
		}
	}
	return checkDontFork(p, o.DontFork)
}

// checkDontFork returns why ranges are not valid MADV_DONTFORK ranges of p, or "": page-aligned,
// non-empty, ascending, disjoint and not adjacent (merged), each covered by p's mappings.
func checkDontFork(p *Process, ranges []AddrRange) string {
	if len(ranges) > MaxMappings {
		return fmt.Sprintf("%d MADV_DONTFORK ranges", len(ranges))
	}
	var prev uint64
	for i, a := range ranges {
		if a.Start%PageSize != 0 || a.End%PageSize != 0 || a.Start >= a.End || a.End > MaxUserAddress || (i > 0 && a.Start <= prev) {
			return fmt.Sprintf("MADV_DONTFORK range [%#x, %#x): not page-aligned, empty, out of range or not after the one before", a.Start, a.End)
		}
		prev = a.End
		// Covered by the mappings (ascending, disjoint: Validate checks them first).
		at := a.Start
		for _, m := range p.Mappings {
			if m.Start <= at && at < m.End {
				at = m.End
			}
		}
		if at < a.End {
			return fmt.Sprintf("MADV_DONTFORK range [%#x, %#x) is not mapped at %#x", a.Start, a.End, at)
		}
	}
	return ""
}
