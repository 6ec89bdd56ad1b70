package test

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// Hostile images (issue 13): a good image of freeze_basic is changed in one way per case and
// thawed by thaw_bad in a new sandbox, which must get the documented errno and keep running.

// hostileCase changes a decoded copy of the good image (and may prepare files in dir).
type hostileCase struct {
	name   string
	change func(t *testing.T, dir string, p *imgfmt.Process)
	want   string // thaw_bad's errno name, or "OK": the thaw succeeds (freeze_basic goes on)
	// setup, if set, is a shell command run in the sandbox before thaw_bad (e.g. mkfifo: the gofer
	// refuses to open the host's FIFOs, so they must live in the sandbox's /tmp).
	setup string
}

// hostileBase freezes freeze_basic on platform p into dir/good.ckpt and returns its path.
func hostileBase(t *testing.T, p, dir string) string {
	t.Helper()
	basic := h.BuildC(t, "freeze_basic")
	good, mapf, logf := filepath.Join(dir, "good.ckpt"), filepath.Join(dir, "map.dat"), filepath.Join(dir, "log.txt")
	if err := os.WriteFile(mapf, []byte(strings.Repeat("M", 4096)), 0o644); err != nil {
		t.Fatal(err)
	}
	h.Do(t, harness.Opts{Platform: p, Persist: true}, basic, good, mapf, logf).WantExit(t, 0)
	return good
}

// runHostile runs each case on platform p. A thaw that blocks fails the case through the
// harness's command timeout.
func runHostile(t *testing.T, p string, cases []hostileCase) {
	bad := h.BuildC(t, "thaw_bad")
	dir := h.NewDir(t)
	good := hostileBase(t, p, dir)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			proc := decodeImage(t, good)
			c.change(t, dir, proc)
			img := filepath.Join(dir, c.name+".ckpt")
			writeImageFile(t, img, proc)
			argv := []string{bad, img}
			if c.setup != "" {
				argv = []string{"/bin/sh", "-c", c.setup + " && exec " + bad + " " + img}
			}
			r := h.Do(t, harness.Opts{Platform: p, Persist: true, Timeout: 45 * time.Second}, argv...)
			if c.want == "OK" {
				if !strings.Contains(r.Stdout, "freeze=1 errno=0 ") {
					t.Errorf("want a successful thaw:\n%s", r)
				}
				return
			}
			r.WantExit(t, 0)
			if want := "thaw=-1 errno=" + c.want + "\nalive canary=5eed\n"; !strings.Contains(r.Stdout, want) {
				t.Errorf("want %q:\n%s", want, r)
			}
		})
	}
}

// referenceMapping returns the image's mapping of path stored by reference.
func referenceMapping(t *testing.T, p *imgfmt.Process, base string) *imgfmt.Mapping {
	t.Helper()
	for i := range p.Mappings {
		m := &p.Mappings[i]
		if m.Kind == imgfmt.MapReference && m.File != nil && filepath.Base(m.File.Path) == base {
			return m
		}
	}
	t.Fatalf("no reference mapping of %s in the image", base)
	return nil
}

// imageFile returns the image's fd whose handle names a file called base.
func imageFile(t *testing.T, p *imgfmt.Process, base string) *imgfmt.File {
	t.Helper()
	for i := range p.Files {
		f := &p.Files[i]
		if f.Handle != nil && filepath.Base(f.Handle.Path) == base {
			return f
		}
	}
	t.Fatalf("no fd on %s in the image", base)
	return nil
}

// sandboxFIFO is the FIFO the FIFO cases make in the sandbox's own /tmp (a tmpfs).
const sandboxFIFO = "/tmp/ckpt-fifo"

// TestThawFIFOs (issue 13 item 13): a file the image reopens by path that is now a FIFO (a
// mapping's file, an fd's file) made the thaw block in open, waiting for the FIFO's other end; an
// image whose mapping or executable is a FIFO is malformed. Now: ESTALE and EINVAL.
func TestThawFIFOs(t *testing.T) {
	fifoHandle := func(fh *imgfmt.FileHandle, keepType bool) *imgfmt.FileHandle {
		c := *fh
		c.Path = sandboxFIFO
		if !keepType {
			c.Mode = c.Mode&^0o170000 | syscall.S_IFIFO
		}
		return &c
	}
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		runHostile(t, p, []hostileCase{
			{"mapping_now_fifo", func(t *testing.T, dir string, p *imgfmt.Process) {
				m := referenceMapping(t, p, "map.dat")
				m.File = fifoHandle(m.File, true)
			}, "ESTALE", "mkfifo " + sandboxFIFO},
			{"fd_now_fifo", func(t *testing.T, dir string, p *imgfmt.Process) {
				f := imageFile(t, p, "log.txt")
				f.Handle = fifoHandle(f.Handle, true)
			}, "ESTALE", "mkfifo " + sandboxFIFO},
			{"fd_handle_fifo", func(t *testing.T, dir string, p *imgfmt.Process) {
				f := imageFile(t, p, "log.txt")
				f.Handle = fifoHandle(f.Handle, false)
			}, "EINVAL", "mkfifo " + sandboxFIFO},
			{"mapping_of_fifo", func(t *testing.T, dir string, p *imgfmt.Process) {
				m := referenceMapping(t, p, "map.dat")
				m.File = fifoHandle(m.File, false)
			}, "EINVAL", "mkfifo " + sandboxFIFO},
			{"exe_is_fifo", func(t *testing.T, dir string, p *imgfmt.Process) {
				p.VM.Exe = fifoHandle(p.VM.Exe, false)
			}, "EINVAL", "mkfifo " + sandboxFIFO},
		})
	})
}

// TestThawValuesPastCommit (issue 13 item 14): values the codec accepts but the commit (after the
// caller's exec, the point of no return) could not apply killed the caller instead of failing the
// thaw: a brk over the vDSO or up to the top of the address space, an interval timer of
// INT64_MAX nanoseconds, an XSAVE header enabling every feature (negative timers the codec refuses). Now EINVAL, and the
// caller goes on.
func TestThawValuesPastCommit(t *testing.T) {
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		var systrap []hostileCase
		if p == "systrap" { // On ptrace a heap up to there is possible (it thaws).
			systrap = append(systrap, hostileCase{"brk_huge", func(t *testing.T, dir string, p *imgfmt.Process) {
				p.VM.BrkEnd = 0x7f0000000000 - 0x1000 // Over systrap's [usertrap] table.
			}, "EINVAL", ""})
		}
		runHostile(t, p, append(systrap, []hostileCase{
			{"brk_over_vdso", func(t *testing.T, dir string, p *imgfmt.Process) {
				p.VM.BrkEnd = p.VM.VDSOBase + p.VM.VDSOSize
			}, "EINVAL", ""},
			{"itimer_max", func(t *testing.T, dir string, p *imgfmt.Process) {
				p.Signals.Itimers[0].ValueNano = math.MaxInt64
			}, "EINVAL", ""},
			{"xstate_bv_all_ones", func(t *testing.T, dir string, p *imgfmt.Process) {
				xs := p.Threads[0].XState
				if len(xs) < 576 {
					t.Skipf("thread 0 has no XSAVE header (%d bytes)", len(xs))
				}
				binary.LittleEndian.PutUint64(xs[512:], math.MaxUint64)
			}, "EINVAL", ""},
		}...))
	})
}

// TestThawErrnos (issue 13 item 15): a thaw returns only the errnos docs/abi.md lists. Open flags
// from the image reached openat unfiltered (O_TMPFILE: EOPNOTSUPP); a file that became a directory
// gave EISDIR; an executable that is a directory is malformed.
func TestThawErrnos(t *testing.T) {
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		runHostile(t, p, []hostileCase{
			{"fd_flags_tmpfile", func(t *testing.T, dir string, p *imgfmt.Process) {
				imageFile(t, p, "log.txt").StatusFlags |= syscall.O_DIRECTORY | 0x400000 // O_TMPFILE
			}, "OK", ""},
			{"fd_now_directory", func(t *testing.T, dir string, p *imgfmt.Process) {
				f := imageFile(t, p, "log.txt")
				fh := *f.Handle
				fh.Path = h.NewDir(t)
				f.Handle = &fh
			}, "ESTALE", ""},
			{"exe_is_directory", func(t *testing.T, dir string, p *imgfmt.Process) {
				exe := *p.VM.Exe
				exe.Path, exe.Mode = h.NewDir(t), syscall.S_IFDIR|0o755
				p.VM.Exe = &exe
			}, "EINVAL", ""},
		})
	})
}
