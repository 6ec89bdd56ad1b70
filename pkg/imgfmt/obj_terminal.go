package imgfmt

import "fmt"

// TerminalObject is an fd on a pseudo-terminal (ObjTerminal): a devpts master (/dev/ptmx) or
// replica (/dev/pts/N). This revision records only which end it is; a thaw installs a placeholder
// (docs/notes-thaw.md "Terminals"): reopening by path would give a fresh pair for a master and,
// for a replica, whatever terminal has that index at the thaw — possibly another process's.
// Body layout (16 bytes): 0 role u32 (0 master, 1 replica), 4 index u32 (the replica's N, or
// 0xffffffff when unknown), 8 reserved u64.
type TerminalObject struct {
	Replica bool
	// Index is the terminal's number (/dev/pts/N), or TerminalIndexUnknown.
	Index uint32
}

// TerminalIndexUnknown is the index of a terminal whose number the image does not know.
const TerminalIndexUnknown = ^uint32(0)

// Kind implements ObjectBody.
func (*TerminalObject) Kind() ObjectKind { return ObjTerminal }

func (o *TerminalObject) encode(w *wbuf) {
	var role uint32
	if o.Replica {
		role = 1
	}
	w.u32(role)
	w.u32(o.Index)
	w.u64(0)
}

func decodeTerminal(r *rbuf) ObjectBody {
	role := r.u32()
	if r.err == nil && role > 1 {
		r.off -= 4
		r.fail("terminal: unknown role %d", role)
	}
	o := &TerminalObject{Replica: role == 1, Index: r.u32()}
	r.zero(8, "reserved")
	return o
}

func (o *TerminalObject) describe() string {
	end := "master"
	if o.Replica {
		end = "replica"
	}
	if o.Index == TerminalIndexUnknown {
		return "pty " + end
	}
	return fmt.Sprintf("pty %s of /dev/pts/%d", end, o.Index)
}

func (o *TerminalObject) check(p *Process, obj *Object) string {
	if obj.Descs() > 1 {
		return "a terminal fd object has one open file description"
	}
	return ""
}
