package imgfmt

import (
	"strings"
	"testing"
)

// terminalProcess returns a process holding a pty master (fd 9), its replica (fds 10 and 11, one
// description) and /dev/tty (fd 12), the replica being its controlling terminal.
func terminalProcess() *Process {
	p := objectProcess()
	p.Files = append(p.Files,
		File{FD: 9, Kind: FileCharDev, StatusFlags: 2, Offset: -1, Desc: "/dev/pts/ptmx"},
		File{FD: 10, Kind: FileCharDev, StatusFlags: 2, Offset: -1, Desc: "/dev/pts/4"},
		File{FD: 11, Kind: FileCharDev, StatusFlags: 2, Offset: -1, Desc: "/dev/pts/4"},
		File{FD: 12, Kind: FileCharDev, StatusFlags: 2, Offset: -1, Desc: "/dev/tty"})
	st := &TerminalState{
		Ends:     []TerminalEnd{TerminalMaster, TerminalReplica, TerminalDevTTY},
		Flags:    TerminalPacket | TerminalControlling | TerminalSessionLeader | TerminalForegroundOwn,
		FgPGID:   7,
		DevMinor: 3,
		Instance: 0xfeedface12345678,
		Termios:  Termios{IFlag: 0o2400, OFlag: 5, CFlag: 0o277, LFlag: 0o105073, Line: 0, ISpeed: 9600, OSpeed: 38400},
		Winsize:  Winsize{Row: 33, Col: 101, XPixel: 640, YPixel: 480},
	}
	for i := range st.Termios.CC {
		st.Termios.CC[i] = byte(i + 1)
	}
	p.Objects = append(p.Objects, Object{ID: 2, Key: 9, FDs: []ObjectFD{{FD: 9, Desc: 0}, {FD: 10, Desc: 1}, {FD: 11, Desc: 1}, {FD: 12, Desc: 2}},
		Body: &TerminalObject{Index: 4, State: st}})
	return p
}

func TestTerminalStateCodec(t *testing.T) {
	p := terminalProcess()
	q, _ := objectRoundTrip(t, p)
	d := viewOf(q).Objects[1].Detail
	for _, want := range []string{"/dev/pts/4", "master replica /dev/tty", "101x33", "packet mode", "controlling terminal of the session leader", "own group"} {
		if !strings.Contains(d, want) {
			t.Errorf("summary %q lacks %q", d, want)
		}
	}
	// Two ends (even count: no padding) round-trip too.
	p2 := terminalProcess()
	p2.Objects[1].FDs = p2.Objects[1].FDs[:3]
	p2.Objects[1].Body.(*TerminalObject).State.Ends = []TerminalEnd{TerminalMaster, TerminalReplica}
	objectRoundTrip(t, p2)
}

func TestTerminalStateChecks(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		mod        func(o *TerminalObject, obj *Object)
	}{
		{"ends count", "3 ends for 2 open file descriptions", func(o *TerminalObject, obj *Object) { obj.FDs = obj.FDs[:3] }},
		{"flags", "unknown state flags", func(o *TerminalObject, obj *Object) { o.State.Flags |= 1 << 9 }},
		{"ctty details", "without the controlling flag", func(o *TerminalObject, obj *Object) { o.State.Flags = TerminalSessionLeader }},
		{"fg without ctty", "without the controlling flag", func(o *TerminalObject, obj *Object) { o.State.Flags = 0 }},
		{"negative fg", "foreground group -3", func(o *TerminalObject, obj *Object) { o.State.FgPGID = -3 }},
		{"role", "role does not match", func(o *TerminalObject, obj *Object) { o.Replica = true }},
		{"two masters", "2 master ends", func(o *TerminalObject, obj *Object) { o.State.Ends[1] = TerminalMaster }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := terminalProcess()
			obj := &p.Objects[1]
			tc.mod(obj.Body.(*TerminalObject), obj)
			wantEncodeError(t, p, tc.want)
		})
	}
	// Patched bytes: the decoder refuses them before anything is built.
	img := encodeToBytes(t, terminalProcess())
	body := lastOwnNoteDesc(img) + objectFixedSize + 4*objectFDSize
	for _, tc := range []struct {
		off  int
		val  byte
		want string
	}{
		{8, 5, "unknown flags"},
		{12, 1, "reserved"},
		{16, 0, "0 ends do not fit"},
		{16, 200, "ends do not fit"},
		{92, 1, "reserved"},
		{96 + 8, 3, "unknown end 3"},
		{96 + 12, 1, "padding"},
		{19, 0x40, "ends do not fit"},
	} {
		wantByteDecodeError(t, img, body+tc.off, tc.val, tc.want)
	}
}
