package imgfmt

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// attrsProcess returns a process with a process-attributes object after an eventfd object.
func attrsProcess() *Process {
	p := objectProcess()
	p.Objects = append(p.Objects, Object{ID: 2, Body: &ProcAttrsObject{Umask: 0o27, OOMScoreAdj: -500, ChildSubreaper: true,
		MembarrierPrivate: true, RSeq: []RSeqRegistration{{TID: p.Threads[0].TID, Signature: 0x53053053, Addr: 0x7f0000001020, Length: RSeqSize}}}})
	return p
}

func TestProcAttrsRoundTrip(t *testing.T) {
	p := attrsProcess()
	q, _ := objectRoundTrip(t, p)
	s := viewOf(q)
	want := "umask 0027, oom_score_adj -500, child subreaper, membarrier private expedited, rseq of thread"
	if len(s.Objects) != 2 || s.Objects[1].Kind != "process-attributes" || !strings.HasPrefix(s.Objects[1].Detail, want) {
		t.Errorf("summary %+v, want %q", s.Objects, want)
	}
}

func TestProcAttrsChecks(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		mod        func(p *Process, b *ProcAttrsObject)
	}{
		{"umask", "umask", func(_ *Process, b *ProcAttrsObject) { b.Umask = 0o1000 }},
		{"oom", "oom_score_adj 1001 out of range", func(_ *Process, b *ProcAttrsObject) { b.OOMScoreAdj = 1001 }},
		{"rseq tid", "rseq of tid 999", func(_ *Process, b *ProcAttrsObject) { b.RSeq[0].TID = 999 }},
		{"rseq twice", "or twice", func(_ *Process, b *ProcAttrsObject) { b.RSeq = append(b.RSeq, b.RSeq[0]) }},
		{"rseq align", "invalid", func(_ *Process, b *ProcAttrsObject) { b.RSeq[0].Addr += 8 }},
		{"rseq length", "invalid", func(_ *Process, b *ProcAttrsObject) { b.RSeq[0].Length = 33 }},
		{"rseq range", "invalid", func(_ *Process, b *ProcAttrsObject) { b.RSeq[0].Addr = MaxUserAddress }},
		{"two", "more than one", func(p *Process, b *ProcAttrsObject) {
			p.Objects = append(p.Objects, Object{ID: 3, Body: &ProcAttrsObject{}})
		}},
		{"fds", "have no fds", func(p *Process, _ *ProcAttrsObject) {
			p.Objects[0].FDs = p.Objects[0].FDs[:1]
			p.Objects[1].FDs = []ObjectFD{{FD: 6}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := attrsProcess()
			tc.mod(p, p.Objects[1].Body.(*ProcAttrsObject))
			wantEncodeError(t, p, tc.want)
		})
	}
}

func TestProcAttrsDecodeErrors(t *testing.T) {
	img := encodeToBytes(t, attrsProcess())
	body := lastOwnNoteDesc(img) + objectFixedSize
	for _, tc := range []struct {
		name string
		off  int
		val  byte
		want string
	}{
		{"flags", 8, 16, "unknown flags"},
		{"count", 12, 9, "do not fit"},
		{"count huge", 15, 0x10, "do not fit"},
		{"reserved", 16 + 20, 1, "reserved"},
		{"oom", 5, 0x40, "out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantByteDecodeError(t, img, body+tc.off, tc.val, tc.want)
		})
	}
}

func TestTerminalCodec(t *testing.T) {
	p := objectProcess()
	p.Files = append(p.Files, File{FD: 9, Kind: FileCharDev, Offset: -1, Desc: "/dev/pts/3"})
	p.Objects = append(p.Objects, Object{ID: 2, FDs: []ObjectFD{{FD: 9}}, Body: &TerminalObject{Replica: true, Index: 3}})
	img := encodeToBytes(t, p)
	q, err := Decode(bytes.NewReader(img), int64(len(img)))
	if err != nil || !reflect.DeepEqual(q.Objects, p.Objects) {
		t.Fatalf("Decode: %v, objects %+v", err, q)
	}
	if s := viewOf(q); s.Objects[1].Detail != "pty replica of /dev/pts/3" {
		t.Errorf("summary %+v", s.Objects)
	}
	body := lastOwnNoteDesc(img) + objectFixedSize + objectFDSize
	for _, tc := range []struct {
		off  int
		want string
	}{{0, "unknown role 2"}, {8, "unknown flags"}, {12, "reserved"}} {
		b := bytes.Clone(img)
		b[body+tc.off] = 2
		if _, err := Decode(bytes.NewReader(b), int64(len(b))); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("patched byte %d: %v, want %q", tc.off, err, tc.want)
		}
	}
}
