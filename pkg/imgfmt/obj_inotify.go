package imgfmt

import (
	"fmt"
	"strings"
)

// InotifyObject is an inotify instance (ObjInotify) with its watches; docs/notes-thaw.md
// "inotify". Body layout: 0 nwatches u32, 4 lastwd i32 (the last watch descriptor handed out,
// ≥ every watch's), 8 dropped u32 (watches left out: their file has no path from the process's
// root), 12 nevents u32 (queued events; 0 in images written before they were recorded, whose
// readers refuse a non-zero value), then per watch, ascending by wd: wd i32 (≥ 1), mask u32 (as
// stored: events and flags), path (u32 length, 1 … MaxPathLen bytes, absolute, without NUL);
// then per queued event, oldest first: wd i32 (−1 for IN_Q_OVERFLOW), mask u32, cookie u32, name
// (u32 length, 0 … 255 bytes, without NUL padding).
type InotifyObject struct {
	LastWD  int32
	Dropped uint32
	Watches []InotifyWatch
	Events  []InotifyEvent
}

// InotifyEvent is one event queued on an inotify instance and not yet read.
type InotifyEvent struct {
	WD     int32
	Mask   uint32
	Cookie uint32
	Name   string
}

// maxInotifyEvents bounds the queued events of one instance (Linux's default
// max_queued_events is 16384; gVisor has no limit), maxInotifyName an event's name (NAME_MAX).
const (
	maxInotifyEvents = 1 << 20
	maxInotifyName   = 255
)

// InotifyWatch is one watch of an inotify instance.
type InotifyWatch struct {
	WD   int32
	Mask uint32
	// Path is the watched file's path from the process's root at the freeze.
	Path string
}

// maxInotifyWatches bounds the watches of one instance (Linux's default max_user_watches is 8192
// per user; gVisor has no limit).
const maxInotifyWatches = 1 << 20

// Kind implements ObjectBody.
func (*InotifyObject) Kind() ObjectKind { return ObjInotify }

func (o *InotifyObject) encode(w *wbuf) {
	w.u32(uint32(len(o.Watches)))
	w.i32(o.LastWD)
	w.u32(o.Dropped)
	w.u32(uint32(len(o.Events)))
	for _, x := range o.Watches {
		w.i32(x.WD)
		w.u32(x.Mask)
		w.str(x.Path)
	}
	for _, e := range o.Events {
		w.i32(e.WD)
		w.u32(e.Mask)
		w.u32(e.Cookie)
		w.str(e.Name)
	}
}

func decodeInotify(r *rbuf) ObjectBody {
	n := r.u32()
	o := &InotifyObject{LastWD: r.i32(), Dropped: r.u32()}
	nev := r.u32()
	// Each watch takes at least 13 bytes, each event 16: bound the counts before allocating.
	if r.err == nil && (n > maxInotifyWatches || nev > maxInotifyEvents || int64(n)*13+int64(nev)*16 > int64(len(r.b)-r.off)) {
		r.fail("inotify: %d watches and %d events do not fit in the note", n, nev)
	}
	if r.err != nil {
		return o
	}
	if n > 0 {
		o.Watches = make([]InotifyWatch, 0, n)
	}
	for i := 0; i < int(n) && r.err == nil; i++ {
		o.Watches = append(o.Watches, InotifyWatch{WD: r.i32(), Mask: r.u32(), Path: r.str("watch path", MaxPathLen)})
	}
	if nev > 0 && r.err == nil {
		o.Events = make([]InotifyEvent, 0, nev)
	}
	for i := 0; i < int(nev) && r.err == nil; i++ {
		o.Events = append(o.Events, InotifyEvent{WD: r.i32(), Mask: r.u32(), Cookie: r.u32(), Name: r.str("event name", maxInotifyName)})
	}
	return o
}

func (o *InotifyObject) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d watches, last wd %d", len(o.Watches), o.LastWD)
	if o.Dropped > 0 {
		fmt.Fprintf(&b, ", %d without a path (not restored)", o.Dropped)
	}
	for _, x := range o.Watches {
		fmt.Fprintf(&b, " [wd %d mask %#x %s]", x.WD, x.Mask, x.Path)
	}
	if len(o.Events) > 0 {
		fmt.Fprintf(&b, "; %d queued events:", len(o.Events))
		for _, e := range o.Events {
			fmt.Fprintf(&b, " [wd %d mask %#x cookie %d %q]", e.WD, e.Mask, e.Cookie, e.Name)
		}
	}
	return b.String()
}

func (o *InotifyObject) check(p *Process, obj *Object) string {
	if obj.Descs() != 1 {
		return "an inotify instance has one open file description"
	}
	for _, f := range obj.FDs {
		if i := p.fileIndex(f.FD); i >= 0 && p.Files[i].Kind != FileOther {
			return fmt.Sprintf("fd %d is not an inotify fd", f.FD)
		}
	}
	if o.LastWD < 0 {
		return fmt.Sprintf("last wd %d", o.LastWD)
	}
	for i, x := range o.Watches {
		switch {
		case x.WD < 1 || x.WD > o.LastWD:
			return fmt.Sprintf("watch %d: wd %d outside 1 … %d", i, x.WD, o.LastWD)
		case i > 0 && x.WD <= o.Watches[i-1].WD:
			return fmt.Sprintf("watch %d: wd %d not above the previous one", i, x.WD)
		case x.Mask == 0:
			return fmt.Sprintf("watch %d: empty mask", i)
		case !strings.HasPrefix(x.Path, "/"):
			return fmt.Sprintf("watch %d: path %q is not absolute", i, x.Path)
		}
	}
	for i, e := range o.Events {
		switch {
		case e.WD < -1 || e.WD == 0 || e.WD > o.LastWD:
			return fmt.Sprintf("event %d: wd %d outside 1 … %d", i, e.WD, o.LastWD)
		case e.Mask == 0:
			return fmt.Sprintf("event %d: empty mask", i)
		case strings.ContainsRune(e.Name, 0) || strings.Contains(e.Name, "/"):
			return fmt.Sprintf("event %d: name %q", i, e.Name)
		}
	}
	return ""
}
