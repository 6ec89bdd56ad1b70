package imgfmt

import "fmt"

// TerminalObject is a pseudo-terminal (ObjTerminal) that fds of the process refer to: a devpts pair
// whose ends are the object's descriptions (the master, /dev/ptmx; replicas, /dev/pts/N or
// /dev/tty). docs/image-format.md §4.3 and docs/notes-thaw.md "Terminals".
//
// Body layout: 0 role u32 (description 0's end: 0 master, 1 replica), 4 index u32 (/dev/pts/N, or
// 0xffffffff when unknown), 8 flags u32 (bit 0: the terminal's state follows; bit 1, only with bit
// 0: its queued bytes follow the state, TerminalQueues), 12 reserved u32.
// Without bit 0 (images written before terminals were restored) the object has one description
// and the body ends here (16 bytes); a thaw gives such an fd a placeholder. With bit 0 the
// TerminalState follows (see its doc comment) and the thaw rebuilds the pair.
type TerminalObject struct {
	// Replica is true if description 0 is a replica end (/dev/pts/N or /dev/tty).
	Replica bool
	// Index is the terminal's number (/dev/pts/N), or TerminalIndexUnknown.
	Index uint32
	// State is the terminal's state, or nil in an image that predates it.
	State *TerminalState
}

// TerminalIndexUnknown is the index of a terminal whose number the image does not know.
const TerminalIndexUnknown = ^uint32(0)

// TerminalEnd says which end of a pseudo-terminal a description is.
type TerminalEnd uint32

// Terminal ends.
const (
	TerminalMaster  TerminalEnd = 0 // The master (/dev/ptmx).
	TerminalReplica TerminalEnd = 1 // A replica opened as /dev/pts/N.
	TerminalDevTTY  TerminalEnd = 2 // A replica opened through /dev/tty (the controlling terminal).
)

// Terminal state flags (TerminalState.Flags).
const (
	// TerminalPacket: the master is in packet mode (TIOCPKT).
	TerminalPacket uint32 = 1 << 0
	// TerminalControlling: the terminal is the process's controlling terminal.
	TerminalControlling uint32 = 1 << 1
	// TerminalControllingMaster: it is so through its master end (TIOCSCTTY on the master);
	// only with TerminalControlling.
	TerminalControllingMaster uint32 = 1 << 2
	// TerminalSessionLeader: the process led its session; only with TerminalControlling.
	TerminalSessionLeader uint32 = 1 << 3
	// TerminalForegroundOwn: the terminal's foreground process group was the process's own;
	// only with TerminalControlling.
	TerminalForegroundOwn uint32 = 1 << 4

	terminalFlagsKnown = TerminalPacket | TerminalControlling | TerminalControllingMaster |
		TerminalSessionLeader | TerminalForegroundOwn
)

// TerminalNCC is the number of control characters of a kernel termios (NCCS).
const TerminalNCC = 19

// Termios is the kernel's struct termios2 of a terminal (TCGETS2).
type Termios struct {
	IFlag, OFlag, CFlag, LFlag uint32
	Line                       uint8
	CC                         [TerminalNCC]uint8
	ISpeed, OSpeed             uint32
}

// Winsize is a terminal's window size (TIOCGWINSZ).
type Winsize struct {
	Row, Col, XPixel, YPixel uint16
}

// TerminalState is the extended part of a terminal body (flags bit 0), bytes 16 … 95 of the body plus the ends:
// 16 nends u32 (= the object's descriptions, ≥ 1), 20 flags u32 (Terminal* flags), 24 fgpgid i32
// (the foreground process group at the freeze, set again by a thaw where that group exists in the
// session; 0 when not the controlling terminal),
// 28 dev_minor u32 (the devpts instance's device minor), 32 instance u64 (which sandbox froze the
// process: the same value means a thaw in the same sandbox), 40 termios (iflag, oflag, cflag, lflag
// u32, line u8, 19 control characters, ispeed, ospeed u32: 44 bytes), 84 winsize (row, col,
// xpixel, ypixel u16), 92 reserved u32, 96 nends × end u32 (TerminalEnd), zero-padded to a
// multiple of 8; then, with header flag bit 1, the TerminalQueues.
type TerminalState struct {
	// Ends holds the end of each description, in description order.
	Ends     []TerminalEnd
	Flags    uint32
	FgPGID   int32
	DevMinor uint32
	Instance uint64
	Termios  Termios
	Winsize  Winsize
	// Queues holds the bytes queued in the terminal, or nil in an image that predates them.
	Queues *TerminalQueues
}

const terminalExtended = 1 << 0

// Kind implements ObjectBody.
func (*TerminalObject) Kind() ObjectKind { return ObjTerminal }

// AddDescription appends the end of other (a one-end body of the same terminal, captured from
// another of its open file descriptions) as the next description.
func (o *TerminalObject) AddDescription(other ObjectBody) error {
	b, ok := other.(*TerminalObject)
	if !ok || o.State == nil || b.State == nil || len(b.State.Ends) != 1 {
		return fmt.Errorf("terminal: cannot add a %T as a further end", other)
	}
	o.State.Ends = append(o.State.Ends, b.State.Ends[0])
	return nil
}

func (o *TerminalObject) encode(w *wbuf) {
	var role, flags uint32
	if o.Replica {
		role = 1
	}
	if o.State != nil {
		flags = terminalExtended
		if o.State.Queues != nil {
			flags |= terminalQueued
		}
	}
	w.u32(role)
	w.u32(o.Index)
	w.u32(flags)
	w.u32(0)
	if s := o.State; s != nil {
		w.u32(uint32(len(s.Ends)))
		w.u32(s.Flags)
		w.i32(s.FgPGID)
		w.u32(s.DevMinor)
		w.u64(s.Instance)
		tc := &s.Termios
		w.u32(tc.IFlag)
		w.u32(tc.OFlag)
		w.u32(tc.CFlag)
		w.u32(tc.LFlag)
		w.u8(tc.Line)
		w.bytes(tc.CC[:])
		w.u32(tc.ISpeed)
		w.u32(tc.OSpeed)
		w.u16(s.Winsize.Row)
		w.u16(s.Winsize.Col)
		w.u16(s.Winsize.XPixel)
		w.u16(s.Winsize.YPixel)
		w.u32(0)
		for _, e := range s.Ends {
			w.u32(uint32(e))
		}
		if len(s.Ends)%2 == 1 {
			w.u32(0)
		}
		if s.Queues != nil {
			s.Queues.encode(w)
		}
	}
}

func decodeTerminal(r *rbuf) ObjectBody {
	role := r.u32()
	if r.err == nil && role > 1 {
		r.off -= 4
		r.fail("terminal: unknown role %d", role)
	}
	o := &TerminalObject{Replica: role == 1, Index: r.u32()}
	flags := r.u32()
	if r.err == nil && (flags&^(terminalExtended|terminalQueued) != 0 || flags == terminalQueued) {
		r.off -= 4
		r.fail("terminal: unknown flags %#x", flags)
	}
	r.zero(4, "reserved")
	if r.err != nil || flags&terminalExtended == 0 {
		return o
	}
	s := &TerminalState{}
	nends := r.u32()
	s.Flags = r.u32()
	s.FgPGID = r.i32()
	s.DevMinor = r.u32()
	s.Instance = r.u64()
	tc := &s.Termios
	tc.IFlag, tc.OFlag, tc.CFlag, tc.LFlag = r.u32(), r.u32(), r.u32(), r.u32()
	tc.Line = r.u8()
	copy(tc.CC[:], r.take(TerminalNCC))
	tc.ISpeed, tc.OSpeed = r.u32(), r.u32()
	s.Winsize = Winsize{Row: r.u16(), Col: r.u16(), XPixel: r.u16(), YPixel: r.u16()}
	r.zero(4, "reserved")
	if r.err != nil {
		return o
	}
	// Bound the count by the bytes left before allocating (each end is 4 bytes).
	if nends == 0 || nends > MaxFDs || int64(nends)*4 > int64(len(r.b)-r.off) {
		r.fail("terminal: %d ends do not fit in the note", nends)
		return o
	}
	s.Ends = make([]TerminalEnd, nends)
	for i := range s.Ends {
		e := TerminalEnd(r.u32())
		if r.err == nil && e > TerminalDevTTY {
			r.fail("terminal: end %d: unknown end %d", i, e)
		}
		s.Ends[i] = e
	}
	if nends%2 == 1 {
		r.zero(4, "padding")
	}
	if flags&terminalQueued != 0 {
		s.Queues = decodeTerminalQueues(r)
	}
	o.State = s
	return o
}

func (o *TerminalObject) describe() string {
	end := "master"
	if o.Replica {
		end = "replica"
	}
	var d string
	if o.Index == TerminalIndexUnknown {
		d = "pty " + end
	} else {
		d = fmt.Sprintf("pty %s of /dev/pts/%d", end, o.Index)
	}
	s := o.State
	if s == nil {
		return d
	}
	names := map[TerminalEnd]string{TerminalMaster: "master", TerminalReplica: "replica", TerminalDevTTY: "/dev/tty"}
	d = "pty"
	if o.Index != TerminalIndexUnknown {
		d = fmt.Sprintf("pty /dev/pts/%d", o.Index)
	}
	d += " ends"
	for _, e := range s.Ends {
		d += " " + names[e]
	}
	d += fmt.Sprintf(", iflag %#o oflag %#o cflag %#o lflag %#o, %dx%d", s.Termios.IFlag, s.Termios.OFlag,
		s.Termios.CFlag, s.Termios.LFlag, s.Winsize.Col, s.Winsize.Row)
	if s.Flags&TerminalPacket != 0 {
		d += ", packet mode"
	}
	if s.Flags&TerminalControlling != 0 {
		d += ", controlling terminal"
		if s.Flags&TerminalSessionLeader != 0 {
			d += " of the session leader"
		}
		if s.Flags&TerminalForegroundOwn != 0 {
			d += ", own group in the foreground"
		} else {
			d += fmt.Sprintf(", foreground group %d", s.FgPGID)
		}
	}
	if s.Queues != nil {
		d += s.Queues.describe()
	}
	return d
}

func (o *TerminalObject) check(p *Process, obj *Object) string {
	s := o.State
	if s == nil {
		if obj.Descs() > 1 {
			return "a terminal fd object has one open file description"
		}
		return ""
	}
	if len(s.Ends) != obj.Descs() {
		return fmt.Sprintf("%d ends for %d open file descriptions", len(s.Ends), obj.Descs())
	}
	if s.Flags&^terminalFlagsKnown != 0 {
		return fmt.Sprintf("unknown state flags %#x", s.Flags&^terminalFlagsKnown)
	}
	if s.Flags&TerminalControlling == 0 && (s.Flags&(TerminalControllingMaster|TerminalSessionLeader|TerminalForegroundOwn) != 0 || s.FgPGID != 0) {
		return "controlling-terminal details without the controlling flag"
	}
	if s.FgPGID < 0 {
		return fmt.Sprintf("foreground group %d", s.FgPGID)
	}
	if s.Queues != nil {
		if msg := s.Queues.check(); msg != "" {
			return msg
		}
	}
	if (s.Ends[0] != TerminalMaster) != o.Replica {
		return "role does not match the first end"
	}
	masters := 0
	for _, e := range s.Ends {
		if e == TerminalMaster {
			masters++
		}
	}
	if masters > 1 {
		return fmt.Sprintf("%d master ends (a terminal has one master description)", masters)
	}
	return ""
}
