package imgfmt

import "testing"

// FuzzDecodeProcObjects is FuzzDecode seeded with images holding the process-related object kinds
// (proc-file, namespace, posix-timer, process-attributes, sysv-sem, sysv-msg, terminal), so that
// mutations start inside their bodies: the decoder must never panic, and an accepted image must be
// canonical (re-encoding gives the same bytes).
func FuzzDecodeProcObjects(f *testing.F) {
	term := objectProcess()
	term.Files = append(term.Files, File{FD: 9, Kind: FileCharDev, Offset: -1, Desc: "/dev/pts/3"})
	term.Objects = append(term.Objects, Object{ID: 2, FDs: []ObjectFD{{FD: 9}}, Body: &TerminalObject{Replica: true, Index: 3}})
	for _, p := range []*Process{procFileProcess(), timerProcess(), attrsProcess(), sysvProcess(), term, terminalProcess(), inotifyProcess(), pendingProcess()} {
		f.Add(encodeToBytes(f, p))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		decodeCanonical(t, data)
	})
}
