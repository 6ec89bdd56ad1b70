package imgfmt

import "fmt"

// TerminalQueues are the bytes queued in a pseudo-terminal's two queues at the freeze (header flags
// bit 1 of a terminal body, only with bit 0). docs/image-format.md §4.3 and docs/notes-thaw.md
// "Terminals".
//
// Layout, after the ends and their padding: 0 qflags u32 (bit 0: the input queue is readable, bit
// 1: the output queue is readable), 4 input read length u32, 8 input wait length u32, 12 output
// read length u32, 16 output wait length u32, 20 reserved u32, 24 the input read bytes, the input
// wait bytes, the output read bytes, the output wait bytes, zero-padded to a multiple of 8.
type TerminalQueues struct {
	// Input is the queue from the master to the replicas (what the program reads on a replica).
	Input TerminalQueue
	// Output is the queue from the replicas to the master (what the master's reader reads).
	Output TerminalQueue
}

// TerminalQueue is one queue of a line discipline.
type TerminalQueue struct {
	// Read holds bytes the line discipline has already processed (termios applied), ready for the
	// reader once Readable; in canonical mode an unterminated line (Readable false) or the rest of
	// a line (Readable true; empty: a pending end of file).
	Read []byte
	// Wait holds bytes written but not yet processed (they did not fit, or a line was waiting):
	// processed with the termios of the moment they move on.
	Wait []byte
	// Readable says the reader may read Read now.
	Readable bool
}

// Bounds of a terminal queue in an image. gVisor's read buffer holds at most one canonical line
// (4096 bytes); its wait buffer takes writes up to 128 KiB, echoes beyond.
const (
	TerminalReadMax = 4096
	TerminalWaitMax = 1 << 20
)

const (
	terminalQueued        = 1 << 1 // Header flag: TerminalQueues follow the state.
	terminalInReadable    = 1 << 0
	terminalOutReadable   = 1 << 1
	terminalQueueFlagsAll = terminalInReadable | terminalOutReadable
)

func (q *TerminalQueues) encode(w *wbuf) {
	var f uint32
	if q.Input.Readable {
		f |= terminalInReadable
	}
	if q.Output.Readable {
		f |= terminalOutReadable
	}
	w.u32(f)
	parts := [][]byte{q.Input.Read, q.Input.Wait, q.Output.Read, q.Output.Wait}
	n := 0
	for _, b := range parts {
		w.u32(uint32(len(b)))
		n += len(b)
	}
	w.u32(0)
	for _, b := range parts {
		w.bytes(b)
	}
	w.zeros(pad8(n) - n)
}

func decodeTerminalQueues(r *rbuf) *TerminalQueues {
	f := r.u32()
	if r.err == nil && f&^terminalQueueFlagsAll != 0 {
		r.off -= 4
		r.fail("terminal: unknown queue flags %#x", f)
	}
	var lens [4]uint32
	for i := range lens {
		lens[i] = r.u32()
	}
	r.zero(4, "queue reserved")
	if r.err != nil {
		return nil
	}
	total := 0
	for i, l := range lens {
		max := uint32(TerminalReadMax)
		if i%2 == 1 {
			max = TerminalWaitMax
		}
		if l > max {
			r.fail("terminal: queue part %d of %d bytes exceeds %d", i, l, max)
			return nil
		}
		total += int(l)
	}
	if int64(total) > int64(len(r.b)-r.off) {
		r.fail("terminal: %d queued bytes do not fit in the note", total)
		return nil
	}
	take := func(n uint32) []byte {
		if n == 0 {
			return nil
		}
		return append([]byte{}, r.take(int(n))...)
	}
	q := &TerminalQueues{
		Input:  TerminalQueue{Read: take(lens[0]), Wait: take(lens[1]), Readable: f&terminalInReadable != 0},
		Output: TerminalQueue{Read: take(lens[2]), Wait: take(lens[3]), Readable: f&terminalOutReadable != 0},
	}
	r.zero(pad8(total)-total, "queue padding")
	return q
}

// check returns why q is not valid, or "".
func (q *TerminalQueues) check() string {
	for _, c := range []struct {
		name string
		q    *TerminalQueue
	}{{"input", &q.Input}, {"output", &q.Output}} {
		if len(c.q.Read) > TerminalReadMax || len(c.q.Wait) > TerminalWaitMax {
			return fmt.Sprintf("%s queue of %d+%d bytes exceeds %d+%d", c.name, len(c.q.Read), len(c.q.Wait), TerminalReadMax, TerminalWaitMax)
		}
	}
	return ""
}

func (q *TerminalQueues) describe() string {
	if q.Empty() {
		return ""
	}
	return fmt.Sprintf(", queued input %d+%d bytes, output %d+%d bytes", len(q.Input.Read), len(q.Input.Wait),
		len(q.Output.Read), len(q.Output.Wait))
}

// Empty reports whether no byte is queued and no end of file is pending.
func (q *TerminalQueues) Empty() bool {
	return len(q.Input.Read)+len(q.Input.Wait)+len(q.Output.Read)+len(q.Output.Wait) == 0 && !q.Input.Readable && !q.Output.Readable
}
