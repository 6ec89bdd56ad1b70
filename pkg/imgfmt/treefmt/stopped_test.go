package treefmt

import (
	"errors"
	"strings"
	"testing"
)

// TestValidateStopped: a stopped process is valid only in a version-4 manifest, only live, and
// only with one of the four stop signals; a manifest without one keeps reading at older versions.
func TestValidateStopped(t *testing.T) {
	good := func() *Manifest {
		return &Manifest{Format: FormatName, Version: VersionStopped, Processes: []Process{
			{PID: 1, PGID: 1, SID: 1, TIDs: []int32{1}, Comm: "sh", Image: "pid-1.img", ImageSize: 1, ImageSHA256: strings.Repeat("0", 64)},
			{PID: 2, PPID: 1, PGID: 1, SID: 1, TIDs: []int32{2}, Comm: "job", Image: "pid-2.img", ImageSize: 1, ImageSHA256: strings.Repeat("0", 64), Stopped: &Stop{Signal: 20}},
		}}
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("a version-4 manifest with a process stopped by SIGTSTP: %v", err)
	}
	old := good()
	old.Version, old.Processes[1].Stopped = Version, nil
	if err := old.Validate(); err != nil {
		t.Fatalf("a version-%d manifest without a stopped process: %v", Version, err)
	}
	for name, mut := range map[string]func(m *Manifest){
		"old version":    func(m *Manifest) { m.Version = VersionParent },
		"not a stop sig": func(m *Manifest) { m.Processes[1].Stopped.Signal = 9 },
		"zero signal":    func(m *Manifest) { m.Processes[1].Stopped.Signal = 0 },
		"stopped zombie": func(m *Manifest) {
			p := &m.Processes[1]
			p.Zombie, p.Image, p.TIDs, p.ImageSize, p.ImageSHA256 = &ExitStatus{}, "", nil, 0, ""
		},
	} {
		m := good()
		mut(m)
		if err := m.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate = %v, want ErrInvalid", name, err)
		}
	}
}
