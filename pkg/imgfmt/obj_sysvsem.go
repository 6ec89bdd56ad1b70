package imgfmt

import "fmt"

// SysVPerm is the identity and permissions of a SysV IPC object: 28 bytes: id i32 (≥ 0), key i32
// (0 = IPC_PRIVATE), mode u32 (≤ 0777), uid, gid, cuid, cgid u32 (in the process's user namespace).
type SysVPerm struct {
	ID                   int32
	Key                  int32
	Mode                 uint32
	UID, GID, CUID, CGID uint32
}

func (s *SysVPerm) encode(w *wbuf) {
	w.i32(s.ID)
	w.i32(s.Key)
	w.u32(s.Mode)
	w.u32(s.UID)
	w.u32(s.GID)
	w.u32(s.CUID)
	w.u32(s.CGID)
}

func decodeSysVPerm(r *rbuf) SysVPerm {
	return SysVPerm{ID: r.i32(), Key: r.i32(), Mode: r.u32(), UID: r.u32(), GID: r.u32(), CUID: r.u32(), CGID: r.u32()}
}

func (s *SysVPerm) check() string {
	if s.ID < 0 {
		return fmt.Sprintf("negative id %d", s.ID)
	}
	if s.Mode > 0o777 {
		return fmt.Sprintf("mode %#o", s.Mode)
	}
	return ""
}

// sysvCheckOrder checks that obj's id is above that of the previous object of the same kind (ids
// ascend per kind: a thaw creates them in that order). The scan stops at the previous object of
// the kind, so the whole list is checked in linear time. Keys are checked by the thaw (against the
// thawing namespace: EEXIST).
func sysvCheckOrder(p *Process, obj *Object, perm func(ObjectBody) (*SysVPerm, bool)) string {
	me, _ := perm(obj.Body)
	for i := int(obj.ID) - 2; i >= 0 && i < len(p.Objects); i-- {
		if prev, ok := perm(p.Objects[i].Body); ok {
			if prev.ID >= me.ID {
				return fmt.Sprintf("id %d is not above the previous id %d", me.ID, prev.ID)
			}
			break
		}
	}
	return ""
}

// SysVSemObject is a SysV semaphore set (ObjSysVSem, no fds). Body layout: the SysVPerm (28
// bytes), nsems u32 (1…32000), then nsems × 8 bytes: value u16 (≤ 32767), reserved u16, sempid i32
// (informational: a thaw sets the thawed process's pid, as SETALL does).
type SysVSemObject struct {
	SysVPerm
	Values []uint16
	PIDs   []int32
}

const (
	maxSems     = 32000
	maxSemValue = 32767
)

// Kind implements ObjectBody.
func (*SysVSemObject) Kind() ObjectKind { return ObjSysVSem }

func (o *SysVSemObject) encode(w *wbuf) {
	o.SysVPerm.encode(w)
	w.u32(uint32(len(o.Values)))
	for i, v := range o.Values {
		w.u16(v)
		w.u16(0)
		var pid int32
		if i < len(o.PIDs) {
			pid = o.PIDs[i]
		}
		w.i32(pid)
	}
}

func decodeSysVSem(r *rbuf) ObjectBody {
	o := &SysVSemObject{SysVPerm: decodeSysVPerm(r)}
	n := r.u32()
	if r.err == nil && (n > maxSems || int64(n)*8 > int64(len(r.b)-r.off)) {
		r.fail("sysv-sem: %d semaphores do not fit in the note", n)
	}
	for i := 0; r.err == nil && i < int(n); i++ {
		o.Values = append(o.Values, r.u16())
		r.zero(2, "reserved")
		o.PIDs = append(o.PIDs, r.i32())
	}
	return o
}

func (o *SysVSemObject) describe() string {
	return fmt.Sprintf("semaphore set id %d key %#x mode %04o uid %d gid %d, values %v", o.ID, uint32(o.Key), o.Mode, o.UID, o.GID, o.Values)
}

func semPerm(b ObjectBody) (*SysVPerm, bool) {
	if s, ok := b.(*SysVSemObject); ok {
		return &s.SysVPerm, true
	}
	return nil, false
}

func (o *SysVSemObject) check(p *Process, obj *Object) string {
	if len(obj.FDs) != 0 {
		return "a semaphore set has no fds"
	}
	if msg := o.SysVPerm.check(); msg != "" {
		return msg
	}
	if len(o.Values) == 0 || len(o.Values) > maxSems || len(o.PIDs) != len(o.Values) {
		return fmt.Sprintf("%d semaphores (%d pids)", len(o.Values), len(o.PIDs))
	}
	for _, v := range o.Values {
		if v > maxSemValue {
			return fmt.Sprintf("value %d exceeds %d", v, maxSemValue)
		}
	}
	return sysvCheckOrder(p, obj, semPerm)
}
