package imgfmt

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// sigInfo returns a siginfo with signo, code and a sigqueue value.
func sigInfo(signo, code int32, value uint64) [SigInfoSize]byte {
	var b [SigInfoSize]byte
	binary.LittleEndian.PutUint32(b[0:], uint32(signo))
	binary.LittleEndian.PutUint32(b[8:], uint32(code))
	binary.LittleEndian.PutUint64(b[24:], value)
	return b
}

// pendingProcess returns a process with SIGUSR1 pending on the group and two instances of
// signal 40 on its first thread, each with its exact siginfo.
func pendingProcess() *Process {
	p := objectProcess()
	p.Signals.Pending = 1 << (10 - 1)
	p.Threads[0].SigPending = 1<<(10-1) | 1<<(40-1)
	p.Objects = append(p.Objects, Object{ID: 2, Body: &PendingSignalsObject{Infos: [][SigInfoSize]byte{
		sigInfo(10, 0, 0), sigInfo(40, -1, 7), sigInfo(40, -1, 8)}}})
	return p
}

func TestPendingSignalsCodec(t *testing.T) {
	q, _ := objectRoundTrip(t, pendingProcess())
	d := viewOf(q).Objects[1].Detail
	if want := "3 siginfos: [sig 10 code 0] [sig 40 code -1] [sig 40 code -1]"; d != want {
		t.Errorf("summary %q, want %q", d, want)
	}
}

func TestPendingSignalsChecks(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		mod        func(p *Process, o *PendingSignalsObject)
	}{
		{"signo", "signal 0", func(p *Process, o *PendingSignalsObject) { o.Infos[0] = sigInfo(0, 0, 0) }},
		{"sigkill", "signal 9", func(p *Process, o *PendingSignalsObject) { o.Infos[0] = sigInfo(9, 0, 0) }},
		{"not pending", "signal 41 is not pending", func(p *Process, o *PendingSignalsObject) { o.Infos[1] = sigInfo(41, 0, 0) }},
		{"fds", "have no fds", func(p *Process, o *PendingSignalsObject) {
			p.Files = append(p.Files, File{FD: 9, Kind: FileOther, Offset: -1, Desc: "x"})
			p.Objects[1].FDs = []ObjectFD{{FD: 9}}
		}},
		{"two", "more than one", func(p *Process, o *PendingSignalsObject) {
			p.Objects = append(p.Objects, Object{ID: 3, Body: &PendingSignalsObject{}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pendingProcess()
			tc.mod(p, p.Objects[1].Body.(*PendingSignalsObject))
			wantEncodeError(t, p, tc.want)
		})
	}
	img := encodeToBytes(t, pendingProcess())
	body := bytes.LastIndex(img, []byte(OwnerRunscCkpt+"\x00")) + pad4(len(OwnerRunscCkpt)+1) + objectFixedSize
	for _, tc := range []struct {
		off  int
		val  byte
		want string
	}{{0, 4, "do not fill"}, {0, 2, "do not fill"}, {3, 0x80, "do not fill"}, {4, 1, "reserved"}, {8, 0, "signal 0"}} {
		b := bytes.Clone(img)
		b[body+tc.off] = tc.val
		wantDecodeError(t, b, tc.want)
	}
}
