package imgfmt

import (
	"bytes"
	"strings"
	"testing"
)

// procFileProcess returns a process with a proc file on fd 5, a pidfd on fds 6 and 7 (one
// description) and a namespace fd on fd 8.
func procFileProcess() *Process {
	p := minimalProcess()
	p.Files = append(p.Files,
		File{FD: 5, Kind: FileRegular, Offset: 0, Desc: "/proc/7/task/7/stat"},
		File{FD: 6, Kind: FileOther, Offset: -1, Desc: "anon_inode:[pidfd]"},
		File{FD: 7, Kind: FileOther, Offset: -1, Desc: "anon_inode:[pidfd]"},
		File{FD: 8, Kind: FileRegular, Offset: -1, Desc: "net:[4026531840]"})
	p.Objects = []Object{
		{ID: 1, Key: 3, FDs: []ObjectFD{{FD: 5}}, Body: &ProcFileObject{What: ProcPath, Target: ProcOwnThread,
			TID: p.Threads[0].TID, Mount: "/proc", Rest: "stat"}},
		{ID: 2, Key: 5, FDs: []ObjectFD{{FD: 6}, {FD: 7}}, Body: &ProcFileObject{What: ProcPIDFD}},
		{ID: 3, Key: 9, FDs: []ObjectFD{{FD: 8}}, Body: &NamespaceObject{Type: 0x40000000, Own: true}},
	}
	return p
}

func TestProcFileRoundTrip(t *testing.T) {
	p := procFileProcess()
	p.Objects = append(p.Objects, Object{ID: 4, Body: &ProcFileObject{What: ProcPath, Target: ProcOther, NoFollow: true, Mount: "/", Rest: "exe"}})
	q, _ := objectRoundTrip(t, p)
	s := viewOf(q)
	var kinds []string
	for _, o := range s.Objects {
		kinds = append(kinds, o.Kind+": "+o.Detail)
	}
	got := strings.Join(kinds, "; ")
	for _, w := range []string{"proc-file: /proc/<pid>/stat of own thread", "proc-file: pidfd of own process",
		"namespace: net namespace (own)", "//<pid>/exe of another process, O_PATH|O_NOFOLLOW"} {
		if !strings.Contains(got, w) {
			t.Errorf("summary %q lacks %q", got, w)
		}
	}
}

// TestProcFileChecks: bodies that name no thread of the process, climb out of /proc/<pid>/ or mix
// fields are refused by the encoder (and so by the decoder, which runs the same checks).
func TestProcFileChecks(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		mod        func(b *ProcFileObject, n *NamespaceObject)
	}{
		{"dotdot", "not relative without ..", func(b *ProcFileObject, _ *NamespaceObject) { b.Rest = "../1/environ" }},
		{"absolute rest", "not relative without ..", func(b *ProcFileObject, _ *NamespaceObject) { b.Rest = "/etc/shadow" }},
		{"relative mount", "not an absolute path", func(b *ProcFileObject, _ *NamespaceObject) { b.Mount = "proc" }},
		{"mount dotdot", "not an absolute path", func(b *ProcFileObject, _ *NamespaceObject) { b.Mount = "/x/../proc" }},
		{"tid", "is not a thread of the process", func(b *ProcFileObject, _ *NamespaceObject) { b.TID = 12345 }},
		{"tid without thread", "a tid without a thread target", func(b *ProcFileObject, _ *NamespaceObject) { b.Target = ProcOwnProcess }},
		{"target", "unknown target 3", func(b *ProcFileObject, _ *NamespaceObject) { b.Target = 3 }},
		{"what", "unknown what 2", func(b *ProcFileObject, _ *NamespaceObject) { b.What = 2 }},
		{"pidfd path", "a pidfd has no path", func(b *ProcFileObject, _ *NamespaceObject) { b.What, b.Target, b.TID = ProcPIDFD, ProcOwnProcess, 0 }},
		{"thread pidfd", "a thread pidfd", func(b *ProcFileObject, _ *NamespaceObject) { b.What, b.Mount, b.Rest = ProcPIDFD, "", "" }},
		{"ns type", "unknown namespace type 0x3", func(_ *ProcFileObject, n *NamespaceObject) { n.Type = 3 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := procFileProcess()
			tc.mod(p.Objects[0].Body.(*ProcFileObject), p.Objects[2].Body.(*NamespaceObject))
			wantEncodeError(t, p, tc.want)
		})
	}
	p := procFileProcess()
	p.Objects[2].FDs = []ObjectFD{{FD: 8}, {FD: 9, Desc: 1}}
	p.Files = append(p.Files, File{FD: 9, Kind: FileRegular, Offset: -1})
	if err := Encode(new(bytes.Buffer), p); err == nil || !strings.Contains(err.Error(), "one open file description") {
		t.Errorf("two descriptions of a namespace fd: %v", err)
	}
}

// TestProcFileDecodeErrors patches the encoded bodies: unknown flags, reserved bytes, a string
// longer than its note, a NUL in a path.
func TestProcFileDecodeErrors(t *testing.T) {
	p := procFileProcess()
	img := encodeToBytes(t, p)
	// Object notes are the last three notes; find each body by its owner name.
	owner := []byte(OwnerRunscCkpt + "\x00")
	var notes []int
	for off := 0; ; {
		i := bytes.Index(img[off:], owner)
		if i < 0 {
			break
		}
		notes = append(notes, off+i+pad4(len(owner)))
		off += i + 1
	}
	proc, ns := notes[len(notes)-3]+objectFixedSize+objectFDSize, notes[len(notes)-1]+objectFixedSize+objectFDSize
	for _, tc := range []struct {
		name string
		off  int
		val  byte
		want string
	}{
		{"proc flags", proc + 12, 2, "unknown flags"},
		{"mount length", proc + 18, 1, "proc-file mount length 65541 exceeds"},
		{"mount past note", proc + 17, 1, "too short"},
		{"mount NUL", proc + 20, 0, "contains a NUL"},
		{"rest length", proc + 16 + 4 + 5 + 1, 0xff, "proc-file path length"},
		{"ns flags", ns + 4, 2, "unknown flags"},
		{"ns reserved", ns + 8, 1, "reserved"},
		{"ns type", ns + 3, 0x01, "unknown namespace type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantByteDecodeError(t, img, tc.off, tc.val, tc.want)
		})
	}
}
