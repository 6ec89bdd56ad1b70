package imgfmt

import (
	"fmt"
	"strings"
)

// ProcFileWhat says what a proc-file object (ObjProcFile) is.
type ProcFileWhat uint32

// What a proc-file object names.
const (
	// ProcPath is a file or directory under the proc filesystem's /<pid>/ (reached as /proc/self/…
	// or /proc/<pid>/…): /proc/self/status, /proc/self/fd, /proc/<pid> itself.
	ProcPath ProcFileWhat = 0
	// ProcPIDFD is a pidfd (pidfd_open, CLONE_PIDFD).
	ProcPIDFD ProcFileWhat = 1
)

// ProcTarget says which process or thread a proc-file object names.
type ProcTarget uint32

// Targets of a proc-file object.
const (
	// ProcOwnProcess is the frozen process itself: a thaw reopens the file against the thawed
	// process, whatever its pid now is.
	ProcOwnProcess ProcTarget = 0
	// ProcOwnThread is one thread of the frozen process (/proc/<pid>/task/<tid>/…,
	// /proc/thread-self/…), named by its TID in the image.
	ProcOwnThread ProcTarget = 1
	// ProcOther is another process (or one that no longer existed at the freeze): a thaw never
	// reopens it (its pid may name anyone by then) and installs a placeholder.
	ProcOther ProcTarget = 2
)

// ProcFileObject is an fd that names a process (ObjProcFile): a file under /proc/<pid>/ or a
// pidfd. Body layout: u32 what, u32 target, i32 tid, u32 flags (bit 0: the file is a symlink opened
// with O_PATH|O_NOFOLLOW), then two strings (u32 length, bytes): mount (the proc filesystem's mount
// point as the process saw it, absolute) and rest (the path below /<pid>/ or /<pid>/task/<tid>/,
// relative, "" for that directory itself). A pidfd has empty strings and no flags.
type ProcFileObject struct {
	What   ProcFileWhat
	Target ProcTarget
	// TID is the thread's TID in the image (one of Process.Threads) for ProcOwnThread, else 0.
	TID      int32
	NoFollow bool
	Mount    string
	Rest     string
}

const procFileNoFollow = 1 << 0

// Kind implements ObjectBody.
func (*ProcFileObject) Kind() ObjectKind { return ObjProcFile }

func (o *ProcFileObject) encode(w *wbuf) {
	w.u32(uint32(o.What))
	w.u32(uint32(o.Target))
	w.i32(o.TID)
	var flags uint32
	if o.NoFollow {
		flags |= procFileNoFollow
	}
	w.u32(flags)
	w.str(o.Mount)
	w.str(o.Rest)
}

func decodeProcFile(r *rbuf) ObjectBody {
	o := &ProcFileObject{What: ProcFileWhat(r.u32()), Target: ProcTarget(r.u32()), TID: r.i32()}
	flags := r.u32()
	if r.err == nil && flags&^procFileNoFollow != 0 {
		r.off -= 4
		r.fail("proc-file: unknown flags %#x", flags)
	}
	o.NoFollow = flags&procFileNoFollow != 0
	o.Mount = r.str("proc-file mount", MaxPathLen)
	o.Rest = r.str("proc-file path", MaxPathLen)
	return o
}

func (o *ProcFileObject) describe() string {
	who := "own process"
	switch o.Target {
	case ProcOwnThread:
		who = fmt.Sprintf("own thread %d", o.TID)
	case ProcOther:
		who = "another process"
	}
	if o.What == ProcPIDFD {
		return "pidfd of " + who
	}
	s := fmt.Sprintf("%s/<pid>/%s of %s", o.Mount, o.Rest, who)
	if o.NoFollow {
		s += ", O_PATH|O_NOFOLLOW"
	}
	return s
}

func (o *ProcFileObject) check(p *Process, obj *Object) string {
	if obj.Descs() > 1 {
		return "a proc file has one open file description"
	}
	switch o.What {
	case ProcPath, ProcPIDFD:
	default:
		return fmt.Sprintf("unknown what %d", o.What)
	}
	switch o.Target {
	case ProcOwnProcess, ProcOther:
		if o.TID != 0 {
			return "a tid without a thread target"
		}
	case ProcOwnThread:
		if o.What == ProcPIDFD {
			return "a thread pidfd is recorded as another process"
		}
		found := false
		for i := range p.Threads {
			found = found || p.Threads[i].TID == o.TID
		}
		if !found {
			return fmt.Sprintf("tid %d is not a thread of the process", o.TID)
		}
	default:
		return fmt.Sprintf("unknown target %d", o.Target)
	}
	if o.What == ProcPIDFD {
		if o.Mount != "" || o.Rest != "" || o.NoFollow {
			return "a pidfd has no path"
		}
		return ""
	}
	if !strings.HasPrefix(o.Mount, "/") || hasDotDot(o.Mount) {
		return fmt.Sprintf("mount %q is not an absolute path without ..", o.Mount)
	}
	// rest is resolved below the thawed process's own /proc/<pid>/: it must not climb out of it.
	if strings.HasPrefix(o.Rest, "/") || hasDotDot(o.Rest) {
		return fmt.Sprintf("path %q is not relative without ..", o.Rest)
	}
	return ""
}

// hasDotDot reports whether path has a ".." component.
func hasDotDot(path string) bool {
	for _, c := range strings.Split(path, "/") {
		if c == ".." {
			return true
		}
	}
	return false
}
