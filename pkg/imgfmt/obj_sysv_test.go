package imgfmt

import (
	"testing"
)

// sysvProcess returns a process with two semaphore sets and a message queue after an eventfd.
func sysvProcess() *Process {
	p := objectProcess()
	p.Objects = append(p.Objects,
		Object{ID: 2, Body: &SysVSemObject{SysVPerm: SysVPerm{ID: 1, Key: 0x5eed, Mode: 0o640}, Values: []uint16{1, 7, 32767}, PIDs: []int32{3, 3, 3}}},
		Object{ID: 3, Body: &SysVSemObject{SysVPerm: SysVPerm{ID: 3, Mode: 0o600, UID: 1000, GID: 100}, Values: []uint16{4}, PIDs: []int32{0}}},
		Object{ID: 4, Body: &SysVMsgObject{SysVPerm: SysVPerm{ID: 1, Key: 0x5eee, Mode: 0o620}, QBytes: 4096,
			Messages: []SysVMessage{{Type: 1, Text: []byte("hello")}, {Type: 2, Text: []byte{}}, {Type: 5, Text: []byte("12345678")}}}})
	return p
}

func TestSysVRoundTrip(t *testing.T) {
	p := sysvProcess()
	q, _ := objectRoundTrip(t, p)
	s := viewOf(q)
	if len(s.Objects) != 4 || s.Objects[1].Kind != "sysv-sem" || s.Objects[3].Kind != "sysv-msg" ||
		s.Objects[1].Detail != "semaphore set id 1 key 0x5eed mode 0640 uid 0 gid 0, values [1 7 32767]" ||
		s.Objects[3].Detail != "message queue id 1 key 0x5eee mode 0620 uid 0 gid 0, qbytes 4096, 3 messages (13 bytes)" {
		t.Errorf("summary %+v", s.Objects)
	}
}

func TestSysVChecks(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		mod        func(p *Process)
	}{
		{"order", "not above the previous id 1", func(p *Process) { p.Objects[2].Body.(*SysVSemObject).ID = 1 }},
		{"negative id", "negative id", func(p *Process) { p.Objects[1].Body.(*SysVSemObject).ID = -1 }},
		{"mode", "mode", func(p *Process) { p.Objects[1].Body.(*SysVSemObject).Mode = 0o1777 }},
		{"value", "value 32768 exceeds", func(p *Process) { p.Objects[1].Body.(*SysVSemObject).Values[0] = 32768 }},
		{"no sems", "0 semaphores", func(p *Process) { p.Objects[2].Body.(*SysVSemObject).Values = nil }},
		{"pids", "(2 pids)", func(p *Process) { p.Objects[1].Body.(*SysVSemObject).PIDs = []int32{1, 2} }},
		{"msg type", "message of type 0", func(p *Process) { p.Objects[3].Body.(*SysVMsgObject).Messages[0].Type = 0 }},
		{"msg size", "8193 bytes", func(p *Process) {
			p.Objects[3].Body.(*SysVMsgObject).Messages[0].Text = make([]byte, MaxSysVMessage+1)
		}},
		{"msg fds", "a message queue has no fds", func(p *Process) {
			p.Objects[0].FDs = p.Objects[0].FDs[:1]
			p.Objects[3].FDs = []ObjectFD{{FD: 6}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := sysvProcess()
			tc.mod(p)
			wantEncodeError(t, p, tc.want)
		})
	}
}

// TestSysVDecodeErrors patches the encoded message queue (the last object note): counts that do
// not fit, an oversized message, non-zero padding and reserved bytes.
func TestSysVDecodeErrors(t *testing.T) {
	img := encodeToBytes(t, sysvProcess())
	body := lastOwnNoteDesc(img) + objectFixedSize
	for _, tc := range []struct {
		name string
		off  int
		val  byte
		want string
	}{
		{"reserved", 28, 1, "reserved"},
		{"count", 43, 0x10, "do not fit"},
		{"length", 48 + 8 + 1, 0x40, "exceeds 8192"},
		{"padding", 48 + 12 + 5, 1, "padding"},
		{"type", 48 + 7, 0x80, "message of type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantByteDecodeError(t, img, body+tc.off, tc.val, tc.want)
		})
	}
}
