package treefmt

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

func stdioMark(n int32) *int32 { return &n }

var sha0 = strings.Repeat("0", 64)

// TestManifestStdio: the container's stdio is what the marks say, wherever it sits (a shell's
// stdout on fd 3 after `exec 3>&1 >>log`); a manifest without marks (older, or a tree without the
// runtime's stdio) falls back to the root's fds 0-2; marks out of range or disagreeing on one
// description are invalid.
func TestManifestStdio(t *testing.T) {
	marked := &Manifest{Format: FormatName, Version: Version, Processes: []Process{
		{PID: 1, PGID: 1, SID: 1, TIDs: []int32{1}, Comm: "sh", Image: ImageName(1), ImageSize: 1, ImageSHA256: sha0, FDs: []FD{
			{FD: 0, File: "f1", Stdio: stdioMark(0)},
			{FD: 1, File: "f2"}, // the log
			{FD: 2, File: "f3", Stdio: stdioMark(2)},
			{FD: 3, File: "f4", Stdio: stdioMark(1)},
		}},
		{PID: 2, PPID: 1, PGID: 1, SID: 1, TIDs: []int32{2}, Comm: "c", Image: ImageName(2), ImageSize: 1, ImageSHA256: sha0, FDs: []FD{
			{FD: 7, File: "f4", Stdio: stdioMark(1)},
		}},
	}}
	if err := marked.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := marked.Stdio(&marked.Processes[0]), map[string]int32{"f1": 0, "f3": 2, "f4": 1}; !maps.Equal(got, want) {
		t.Errorf("marked: Stdio = %v, want %v", got, want)
	}

	old := &Manifest{Format: FormatName, Version: Version, Processes: []Process{
		{PID: 1, PGID: 1, SID: 1, TIDs: []int32{1}, Comm: "sh", Image: ImageName(1), ImageSize: 1, ImageSHA256: sha0, FDs: []FD{
			{FD: 0, File: "f1"}, {FD: 1, File: "f2"}, {FD: 2, File: "f2"}, {FD: 3, File: "f3"},
		}},
	}}
	if got, want := old.Stdio(&old.Processes[0]), map[string]int32{"f1": 0, "f2": 2}; !maps.Equal(got, want) {
		t.Errorf("unmarked: Stdio = %v, want %v", got, want)
	}
	if got := old.Stdio(nil); len(got) != 0 {
		t.Errorf("unmarked, no root: Stdio = %v, want none", got)
	}

	for name, mut := range map[string]func(m *Manifest){
		"stdio 3":        func(m *Manifest) { m.Processes[0].FDs[0].Stdio = stdioMark(3) },
		"stdio -1":       func(m *Manifest) { m.Processes[0].FDs[0].Stdio = stdioMark(-1) },
		"two stdio nums": func(m *Manifest) { m.Processes[1].FDs[0].Stdio = stdioMark(2) },
	} {
		m := *marked
		m.Processes = []Process{marked.Processes[0], marked.Processes[1]}
		for i := range m.Processes {
			m.Processes[i].FDs = append([]FD(nil), m.Processes[i].FDs...)
		}
		mut(&m)
		if err := m.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate = %v, want ErrInvalid", name, err)
		}
	}
}
