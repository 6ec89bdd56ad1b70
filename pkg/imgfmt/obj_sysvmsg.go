package imgfmt

import "fmt"

// SysVMsgObject is a SysV message queue (ObjSysVMsg, no fds) with its queued messages. Body
// layout: the SysVPerm (28 bytes), reserved u32, qbytes u64 (msg_qbytes), nmsgs u32, reserved
// u32, then per message: type i64 (> 0), length u32 (≤ 8192), the bytes, zero padding to a
// multiple of 8.
type SysVMsgObject struct {
	SysVPerm
	QBytes   uint64
	Messages []SysVMessage
}

// SysVMessage is one queued message.
type SysVMessage struct {
	Type int64
	Text []byte
}

// MaxSysVMessage is the largest SysV message (MSGMAX).
const MaxSysVMessage = 8192

// Kind implements ObjectBody.
func (*SysVMsgObject) Kind() ObjectKind { return ObjSysVMsg }

func (o *SysVMsgObject) encode(w *wbuf) {
	o.SysVPerm.encode(w)
	w.u32(0)
	w.u64(o.QBytes)
	w.u32(uint32(len(o.Messages)))
	w.u32(0)
	for _, m := range o.Messages {
		w.i64(m.Type)
		w.u32(uint32(len(m.Text)))
		w.bytes(m.Text)
		w.zeros(pad8(len(m.Text)) - len(m.Text))
	}
}

// pad8 rounds n up to a multiple of 8.
func pad8(n int) int { return (n + 7) &^ 7 }

func decodeSysVMsg(r *rbuf) ObjectBody {
	o := &SysVMsgObject{SysVPerm: decodeSysVPerm(r)}
	r.zero(4, "reserved")
	o.QBytes = r.u64()
	n := r.u32()
	r.zero(4, "reserved")
	// Every message takes at least 12 bytes.
	if r.err == nil && int64(n)*12 > int64(len(r.b)-r.off) {
		r.fail("sysv-msg: %d messages do not fit in the note", n)
	}
	for i := 0; r.err == nil && i < int(n); i++ {
		m := SysVMessage{Type: r.i64()}
		l := r.u32()
		if r.err == nil && l > MaxSysVMessage {
			r.fail("sysv-msg: message length %d exceeds %d", l, MaxSysVMessage)
			break
		}
		m.Text = append([]byte{}, r.take(int(l))...)
		r.zero(pad8(int(l))-int(l), "padding")
		o.Messages = append(o.Messages, m)
	}
	return o
}

func (o *SysVMsgObject) describe() string {
	var bytes int
	for _, m := range o.Messages {
		bytes += len(m.Text)
	}
	return fmt.Sprintf("message queue id %d key %#x mode %04o uid %d gid %d, qbytes %d, %d messages (%d bytes)",
		o.ID, uint32(o.Key), o.Mode, o.UID, o.GID, o.QBytes, len(o.Messages), bytes)
}

func msgPerm(b ObjectBody) (*SysVPerm, bool) {
	if s, ok := b.(*SysVMsgObject); ok {
		return &s.SysVPerm, true
	}
	return nil, false
}

func (o *SysVMsgObject) check(p *Process, obj *Object) string {
	if len(obj.FDs) != 0 {
		return "a message queue has no fds"
	}
	if msg := o.SysVPerm.check(); msg != "" {
		return msg
	}
	var total int64
	for _, m := range o.Messages {
		if m.Type <= 0 || len(m.Text) > MaxSysVMessage {
			return fmt.Sprintf("message of type %d and %d bytes", m.Type, len(m.Text))
		}
		total += int64(len(m.Text))
	}
	if total > MaxObjectData {
		return fmt.Sprintf("%d message bytes exceed %d", total, MaxObjectData)
	}
	return sysvCheckOrder(p, obj, msgPerm)
}
