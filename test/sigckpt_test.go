package test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/ckptabi"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// Tests of SIGCKPT and SIGCKPTEXIT (docs/notes-sigckpt.md): the guest test/guests/sigckpt.c sends
// a checkpoint signal in one way or another and prints what happened; the test checks the output,
// the exit status and the image the target wrote (an ELF core read with debug/elf, then decoded
// with pkg/imgfmt for its pid and NT_SIGINFO).

// si_code values recorded in NT_SIGINFO.
const (
	siUser  = 0
	siQueue = -1
	siTkill = -6
)

// sigckptGuest builds test/guests/sigckpt.c.
func sigckptGuest(t *testing.T) string {
	t.Helper()
	return h.BuildC(t, "sigckpt", "-pthread")
}

// wantSigInfo fails t unless p records the signal sig with code, sent by pid senderPID (-1: any
// nonzero pid).
func wantSigInfo(t *testing.T, p *imgfmt.Process, sig, code, senderPID int32) {
	t.Helper()
	si := p.SigInfo
	if si == nil {
		t.Fatalf("image has no NT_SIGINFO")
	}
	if si.Signo != sig || si.Code != code || (senderPID >= 0 && si.PID != senderPID) || (senderPID < 0 && si.PID <= 0) {
		t.Errorf("NT_SIGINFO = %+v, want signo %d code %d pid %d", *si, sig, code, senderPID)
	}
}

// wantNoImages fails t if dir holds a *.ckpt file or a temporary image file (.NAME.tmp-*).
func wantNoImages(t *testing.T, dir string) {
	t.Helper()
	if m, _ := filepath.Glob(filepath.Join(dir, "*.ckpt")); len(m) > 0 {
		t.Errorf("unexpected images: %v", m)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*")); len(m) > 0 {
		t.Errorf("temporary image files left behind: %v", m)
	}
}

// runGuest runs the sigckpt guest in MODE with SIG under `do` (writing through to the host) with
// extra global flags, and returns the result and the directory the guest ran in.
func runGuest(t *testing.T, platform string, flags []string, mode string, sig int) (*harness.Result, string) {
	t.Helper()
	guest := sigckptGuest(t)
	s := h.NewSandbox(t, harness.Opts{Platform: platform, Persist: true, Flags: flags})
	r := s.Run(t, s.DoArgs(guest, mode, strconv.Itoa(sig))...)
	return r, s.Dir
}

// wantImage is an image a guest run must leave in its directory.
type wantImage struct {
	name string // File name in the guest's directory.
	pid  int32  // The pid it holds.
	// sig, code and sender are the NT_SIGINFO it records (sender -1: any nonzero pid); sig 0:
	// not checked.
	sig, code, sender int32
}

// sigckptCase is one run of the sigckpt guest: its mode, signal and global flags, and what the run
// must show.
type sigckptCase struct {
	name  string
	flags []string // Global flags of the sandbox.
	mode  string   // The guest's mode (test/guests/sigckpt.c).
	sig   int
	exit  int      // The guest's exit status.
	lines []string // Lines the guest's output must have.
	// images returns the images the run must leave, and no other; nil: no image at all. out is the
	// guest's output (pids), name the image name the default ckpt-file (%N.ckpt) gives.
	images func(t *testing.T, out, name string) []wantImage
	// check, if not nil, checks more of the run and its images (in the order of images).
	check func(t *testing.T, r *harness.Result, imgs []*imgfmt.Process)
}

// selfImage is the image of a guest that checkpoints itself with sig and code: %N.ckpt, its pid.
func selfImage(sig, code int32) func(t *testing.T, out, name string) []wantImage {
	return func(t *testing.T, out, name string) []wantImage {
		pid := int32(lineValue(t, out, "pid"))
		return []wantImage{{name, pid, sig, code, pid}}
	}
}

// sigckptCases are the runs of TestSigckptGuest.
var sigckptCases = []sigckptCase{
	// SIGCKPT sent to the guest itself through each of the six wrapped syscalls: the image appears
	// as %N.ckpt in the cwd, with the guest's pid and the right si_code, and the guest runs on.
	{name: "syscall/kill", mode: "kill", sig: ckptabi.SIGCKPT, lines: []string{"kill 0 errno 0", "after 2"}, images: selfImage(ckptabi.SIGCKPT, siUser)},
	{name: "syscall/tkill", mode: "tkill", sig: ckptabi.SIGCKPT, lines: []string{"tkill 0 errno 0", "after 2"}, images: selfImage(ckptabi.SIGCKPT, siTkill)},
	{name: "syscall/tgkill", mode: "tgkill", sig: ckptabi.SIGCKPT, lines: []string{"tgkill 0 errno 0", "after 2"}, images: selfImage(ckptabi.SIGCKPT, siTkill)},
	{name: "syscall/sigqueue", mode: "sigqueue", sig: ckptabi.SIGCKPT, lines: []string{"sigqueue 0 errno 0", "after 2"}, images: selfImage(ckptabi.SIGCKPT, siQueue)},
	{name: "syscall/tgsigqueue", mode: "tgsigqueue", sig: ckptabi.SIGCKPT, lines: []string{"tgsigqueue 0 errno 0", "after 2"}, images: selfImage(ckptabi.SIGCKPT, siQueue)},
	{name: "syscall/pidfd", mode: "pidfd", sig: ckptabi.SIGCKPT, lines: []string{"pidfd 0 errno 0", "after 2"}, images: selfImage(ckptabi.SIGCKPT, siUser)},

	// A parent sends SIGCKPT to its child; the child writes the image and ticks on to the end.
	{name: "other_process", mode: "child", sig: ckptabi.SIGCKPT, lines: []string{"kill 0 errno 0", "child tick 29", "child status 0", "after 2"},
		images: func(t *testing.T, out, name string) []wantImage {
			return []wantImage{{name, int32(lineValue(t, out, "child")), ckptabi.SIGCKPT, siUser, int32(lineValue(t, out, "pid"))}}
		}},

	// A thread-directed SIGCKPT is carried out by that thread, and a process-directed one by a
	// thread that does not block it; the image holds both threads, the freezing one first.
	{name: "threads/thread", mode: "thread", sig: ckptabi.SIGCKPT, lines: []string{"after 2"}, images: selfImage(0, 0), check: wantWorkerFirst},
	{name: "threads/maskedmain", mode: "maskedmain", sig: ckptabi.SIGCKPT, lines: []string{"after 2"}, images: selfImage(0, 0), check: wantWorkerFirst},

	// kill(0, SIGCKPT) and pidfd_send_signal(PIDFD_SIGNAL_PROCESS_GROUP) checkpoint both
	// processes of the group; with --ckpt-file=%N.%P.ckpt each writes its own image.
	{name: "group/pgrp", flags: []string{"--ckpt-file=%N.%P.ckpt"}, mode: "pgrp", sig: ckptabi.SIGCKPT,
		lines: []string{"kill 0 errno 0", "child tick 29", "after 2"}, images: groupImages},
	{name: "group/pidfdpgrp", flags: []string{"--ckpt-file=%N.%P.ckpt"}, mode: "pidfdpgrp", sig: ckptabi.SIGCKPT,
		lines: []string{"pidfd 0 errno 0", "child tick 29", "after 2"}, images: groupImages},

	// kill(-1, SIGCKPT) checkpoints every process the sender may signal except itself and init
	// (here: the guest's other child only).
	{name: "killall", flags: []string{"--ckpt-file=%N.%P.ckpt"}, mode: "killall", sig: ckptabi.SIGCKPT,
		lines: []string{"killall 0 errno 0", "children done", "after 2"},
		images: func(t *testing.T, out, name string) []wantImage {
			ticker := int32(lineValue(t, out, "child"))
			return []wantImage{{pidImage(name, ticker), ticker, ckptabi.SIGCKPT, siUser, int32(lineValue(t, out, "sender"))}}
		}},

	// A handler runs instead of the checkpoint, an ignored SIGCKPT does nothing, and a blocked one
	// is carried out at once (not left pending, so unblocking it does not kill the process).
	{name: "handled", mode: "handler", sig: ckptabi.SIGCKPT, lines: []string{"kill 0 errno 0", "handled " + sigckptArg, "after 2"}},
	{name: "ignored", mode: "ignore", sig: ckptabi.SIGCKPT, lines: []string{"kill 0 errno 0", "after 2"}},
	{name: "blocked", mode: "blocked", sig: ckptabi.SIGCKPT, lines: []string{"kill 0 errno 0", "pending 0", "unblocked", "after 2"}, images: selfImage(0, 0)},

	// SIGCKPTEXIT writes the image, then the process dies as if killed by signal 63.
	{name: "exit", mode: "kill", sig: ckptabi.SIGCKPTEXIT, exit: 128 + ckptabi.SIGCKPTEXIT, images: selfImage(ckptabi.SIGCKPTEXIT, siUser),
		check: func(t *testing.T, r *harness.Result, _ []*imgfmt.Process) {
			if strings.Contains(r.Stdout, "after 0") {
				t.Errorf("the guest ran on after SIGCKPTEXIT:\n%s", r)
			}
		}},

	// A ckpt-file that cannot be created (its directory does not exist): no image, and the
	// process runs on whatever the signal. SIGCKPT creates the file on the goroutine that writes
	// the image, after the process runs again; SIGCKPTEXIT once the process is captured.
	{name: "uncreatable/sigckpt", flags: []string{"--ckpt-file=nodir/%N.ckpt"}, mode: "kill", sig: ckptabi.SIGCKPT, lines: []string{"kill 0 errno 0", "after 2"}},
	{name: "uncreatable/sigckptexit", flags: []string{"--ckpt-file=nodir/%N.ckpt"}, mode: "kill", sig: ckptabi.SIGCKPTEXIT, lines: []string{"kill 0 errno 0", "after 2"}},

	// --ckpt-signal=40 makes 40 the checkpoint signal, and 62 an ordinary signal again (its
	// default action terminates).
	{name: "signal_flag/40", flags: []string{"--ckpt-signal=40"}, mode: "kill", sig: 40, lines: []string{"kill 0 errno 0", "after 2"}, images: selfImage(40, siUser)},
	{name: "signal_flag/62", flags: []string{"--ckpt-signal=40"}, mode: "kill", sig: ckptabi.SIGCKPT, exit: 128 + ckptabi.SIGCKPT},

	// --ckpt-file expands %N, %P, %U and %%.
	{name: "file_template", flags: []string{"--ckpt-file=img-%N-%P-%U-%%.ckpt"}, mode: "kill", sig: ckptabi.SIGCKPT,
		images: func(t *testing.T, out, name string) []wantImage {
			pid := int32(lineValue(t, out, "pid"))
			return []wantImage{{fmt.Sprintf("img-%s-%d-0-%%.ckpt", strings.TrimSuffix(name, ".ckpt"), pid), pid, ckptabi.SIGCKPT, siUser, pid}}
		}},

	// The wrapped syscalls fail like the originals (ESRCH, EINVAL, EPERM for a sender that may not
	// signal the target), and --ckpt-group refuses a sender outside the group with EPERM. No image
	// is written in any case.
	{name: "errno/esrch_einval", mode: "esrch", sig: ckptabi.SIGCKPT, lines: []string{"kill -1 errno 3", "tkill -1 errno 22", "tgkill -1 errno 3"}},
	{name: "errno/eperm_not_permitted", mode: "eperm", sig: ckptabi.SIGCKPT, lines: []string{"kill -1 errno 1", "child status 0"}},
	{name: "errno/eperm_ckpt_group", flags: []string{"--ckpt-group=7"}, mode: "kill", sig: ckptabi.SIGCKPT, lines: []string{"kill -1 errno 1", "after 2"}},
}

// pidImage is the image name --ckpt-file=%N.%P.ckpt gives pid, from the default name %N.ckpt.
func pidImage(name string, pid int32) string {
	return fmt.Sprintf("%s.%d.ckpt", strings.TrimSuffix(name, ".ckpt"), pid)
}

// groupImages are the images of the guest and its child, both signalled by the guest.
func groupImages(t *testing.T, out, name string) []wantImage {
	parent, child := int32(lineValue(t, out, "pid")), int32(lineValue(t, out, "child"))
	return []wantImage{
		{pidImage(name, parent), parent, ckptabi.SIGCKPT, siUser, parent},
		{pidImage(name, child), child, ckptabi.SIGCKPT, siUser, parent},
	}
}

// wantWorkerFirst checks that the image holds two threads, the guest's worker thread first.
func wantWorkerFirst(t *testing.T, r *harness.Result, imgs []*imgfmt.Process) {
	t.Helper()
	worker := lineValue(t, r.Stdout, "thread")
	if img := imgs[0]; len(img.Threads) != 2 || img.Threads[0].TID != int32(worker) {
		var tids []int32
		for _, th := range img.Threads {
			tids = append(tids, th.TID)
		}
		t.Errorf("image threads %v, want 2 with the worker %d first", tids, worker)
	}
}

// TestSigckptGuest runs the sigckpt guest in each of sigckptCases: it sends a checkpoint signal in
// one way or another; the test checks its exit status and output, and that it left exactly the
// images the case names, each of the right process, with the right NT_SIGINFO.
func TestSigckptGuest(t *testing.T) {
	guest := sigckptGuest(t)
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		for _, c := range sigckptCases {
			t.Run(c.name, func(t *testing.T) {
				r, dir := runGuest(t, p, c.flags, c.mode, c.sig)
				r.WantExit(t, c.exit)
				wantLines(t, r.Stdout, c.lines...)
				if c.images == nil {
					wantNoImages(t, dir)
					if c.check != nil {
						c.check(t, r, nil)
					}
					return
				}
				want := c.images(t, r.Stdout, comm(guest)+".ckpt")
				var imgs []*imgfmt.Process
				for _, w := range want {
					img := decodeCkptFile(t, filepath.Join(dir, w.name))
					if img.Info.PID != w.pid || img.Info.Name != comm(guest) {
						t.Errorf("%s: image of pid %d %q, want pid %d %q", w.name, img.Info.PID, img.Info.Name, w.pid, comm(guest))
					}
					if w.sig != 0 {
						wantSigInfo(t, img, w.sig, w.code, w.sender)
					}
					imgs = append(imgs, img)
				}
				if all, _ := filepath.Glob(filepath.Join(dir, "*.ckpt")); len(all) != len(want) {
					t.Errorf("images %v, want only %+v", all, want)
				}
				if c.check != nil {
					c.check(t, r, imgs)
				}
			})
		}
	})
}

// persistentBundle returns a container running the sigckpt guest with args, whose writes (the
// images in its working directory, the sandbox's Dir) reach the host, with the given policy
// annotations (nil: defaults).
//
// The policy goes in as annotations, the per-container route; the --ckpt-* flags on create/run
// are covered by policy_flags_test.go.
func persistentBundle(t *testing.T, platform string, annotations map[string]string, args ...string) *harness.Container {
	t.Helper()
	return h.Bundle(t, harness.BundleOpts{
		Opts:        harness.Opts{Platform: platform, Persist: true},
		Args:        append([]string{sigckptGuest(t)}, args...),
		Annotations: annotations,
	})
}

// hostSender is the sender pid a signal from the host's `kill` records: 0, as for upstream's kill
// (the kill channel, runsc-ckpt/kill_fifo.go).
const hostSender = 0

// TestSigckptHost sends checkpoint signals from the host with `runsc-ckpt kill` to a running
// container: SIGCKPT by name (image, the guest ticks on), by number with --pid, an unknown pid
// (ESRCH), and SIGCKPTEXIT (image, then exit status 128+63). They go through the kill channel:
// the sender is the host (pid 0), not a process of the sandbox. delete removes the channel.
func TestSigckptHost(t *testing.T) {
	guest := sigckptGuest(t)
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		c := persistentBundle(t, p, nil, "loop", "600")
		c.RunDetached(t)
		c.WaitForOutput(t, "tick 1\n")
		image := filepath.Join(c.Dir, comm(guest)+".ckpt")

		c.Kill(t, "SIGCKPT")
		waitForFile(t, image, 30*time.Second)
		img := decodeCkptFile(t, image)
		if img.Info.PID != 1 {
			t.Errorf("image of pid %d, want the container's init (1)", img.Info.PID)
		}
		wantSigInfo(t, img, ckptabi.SIGCKPT, siUser, hostSender)
		ticks := strings.Count(c.GuestStdout(), "tick ")
		c.WaitForOutput(t, fmt.Sprintf("tick %d\n", ticks+2))

		if err := os.Remove(image); err != nil {
			t.Fatal(err)
		}
		c.MustRun(t, "kill", "--pid", "1", c.ID, sigckptArg)
		waitForFile(t, image, 30*time.Second)
		wantSigInfo(t, decodeCkptFile(t, image), ckptabi.SIGCKPT, siUser, hostSender)

		r := c.Run(t, "kill", "--pid", "999", c.ID, "SIGCKPT")
		if r.ExitCode == 0 || !strings.Contains(r.Stderr, "no such process") {
			t.Errorf("kill --pid 999: want failure with ESRCH, got:\n%s", r)
		}

		if err := os.Remove(image); err != nil {
			t.Fatal(err)
		}
		c.Kill(t, "SIGCKPTEXIT")
		if code := c.Wait(t); code != 128+ckptabi.SIGCKPTEXIT {
			t.Errorf("exit status after SIGCKPTEXIT %d, want %d", code, 128+ckptabi.SIGCKPTEXIT)
		}
		wantSigInfo(t, decodeCkptFile(t, image), ckptabi.SIGCKPTEXIT, siUser, hostSender)

		// delete removes the kill channel with the sandbox.
		c.Delete(t, false)
		for _, f := range killChannel(c) {
			if _, err := os.Lstat(f); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s after delete: %v, want it removed", f, err)
			}
		}
	})
}

// TestSigckptHostHandledAndOrdinary: from the host, a handled SIGCKPT reaches the handler and
// writes no image; an ordinary signal still goes upstream's way.
func TestSigckptHostHandledAndOrdinary(t *testing.T) {
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		c := persistentBundle(t, p, nil, "loophandler", "600")
		c.RunDetached(t)
		c.WaitForOutput(t, "tick 1\n")
		c.Kill(t, "SIGCKPT")
		c.WaitForOutput(t, "handler "+sigckptArg+"\n")
		wantNoImages(t, c.Dir)
		c.Kill(t, "TERM")
		if code := c.Wait(t); code != 128+15 {
			t.Errorf("exit status after TERM %d, want %d", code, 128+15)
		}
	})
}

// TestSigckptHostAllAndGroup: `kill --all` and `kill --pgid` reach every process of the
// container; the host side uses the sandbox's checkpoint signal (40 here, by number and by name);
// with ckpt-group 7 the host route still works (the host is not held to the group, as a guest
// outside it is: TestSigckptGuest/errno).
func TestSigckptHostAllAndGroup(t *testing.T) {
	guest := sigckptGuest(t)
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		c := persistentBundle(t, p, map[string]string{
			"dev.runsc-ckpt.ckpt-file":   "%N.%P.ckpt",
			"dev.runsc-ckpt.ckpt-group":  "7",
			"dev.runsc-ckpt.ckpt-signal": "40",
		}, "loopchild", "600")
		c.RunDetached(t)
		c.WaitForOutput(t, "tick 1\n")
		child := lineValue(t, c.GuestStdout(), "child")
		images := func() []string {
			return []string{
				filepath.Join(c.Dir, fmt.Sprintf("%s.1.ckpt", comm(guest))),
				filepath.Join(c.Dir, fmt.Sprintf("%s.%d.ckpt", comm(guest), child)),
			}
		}
		// The sandbox's checkpoint signal is 40: by number and by name.
		for _, args := range [][]string{{"kill", "--all", c.ID, "40"}, {"kill", "--pgid", "1", c.ID, "ckpt"}} {
			c.MustRun(t, args...)
			for i, img := range images() {
				waitForFile(t, img, 30*time.Second)
				proc := decodeCkptFile(t, img)
				if got := proc.Info.PID; got != []int32{1, int32(child)}[i] {
					t.Errorf("%v: %s holds pid %d", args, img, got)
				}
				wantSigInfo(t, proc, 40, siUser, hostSender)
				if err := os.Remove(img); err != nil {
					t.Fatal(err)
				}
			}
		}
		ticks := strings.Count(c.GuestStdout(), "tick ")
		c.WaitForOutput(t, fmt.Sprintf("tick %d\n", ticks+1))
	})
}

// TestSigckptHostHelper: `boot` makes the sandbox's kill channel (two FIFOs, mode 0600, next to
// its state file); without them — a sandbox started by an older runsc-ckpt — `kill` falls back to
// the signal helper inside the container, which is then the recorded sender (with ckpt-group 7 it
// gets the group).
func TestSigckptHostHelper(t *testing.T) {
	guest := sigckptGuest(t)
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		c := persistentBundle(t, p, map[string]string{"dev.runsc-ckpt.ckpt-group": "7"}, "loop", "600")
		c.RunDetached(t)
		c.WaitForOutput(t, "tick 1\n")
		fifos := killChannel(c)
		for _, f := range fifos {
			fi, err := os.Stat(f)
			if err != nil {
				t.Fatalf("kill channel: %v", err)
			}
			if fi.Mode().Type() != os.ModeNamedPipe || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, want a FIFO with mode 0600", f, fi.Mode())
			}
		}
		image := filepath.Join(c.Dir, comm(guest)+".ckpt")
		c.Kill(t, "SIGCKPT")
		waitForFile(t, image, 30*time.Second)
		wantSigInfo(t, decodeCkptFile(t, image), ckptabi.SIGCKPT, siUser, hostSender)
		if err := os.Remove(image); err != nil {
			t.Fatal(err)
		}

		for _, f := range fifos {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
		c.Kill(t, "SIGCKPT")
		waitForFile(t, image, 30*time.Second)
		// -1: a process of the sandbox (the helper's pid), not the host.
		wantSigInfo(t, decodeCkptFile(t, image), ckptabi.SIGCKPT, siUser, -1)
		ticks := strings.Count(c.GuestStdout(), "tick ")
		c.WaitForOutput(t, fmt.Sprintf("tick %d\n", ticks+1))

	})
}

// killChannel returns the paths of c's kill channel FIFOs (runsc-ckpt/kill_fifo.go).
func killChannel(c *harness.Container) []string {
	return []string{
		filepath.Join(c.Root, "runsc-ckpt-kill_"+c.ID+".req"),
		filepath.Join(c.Root, "runsc-ckpt-kill_"+c.ID+".rep"),
	}
}

// TestSigckptThaw: an image written by SIGCKPT thaws (`checkpt -r`, in a new sandbox) into a
// process that resumes right after its kill(2) call, which returns 0 there too.
func TestSigckptThaw(t *testing.T) {
	guest := sigckptGuest(t)
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		r, dir := runGuest(t, p, nil, "kill", ckptabi.SIGCKPT)
		r.WantExit(t, 0)
		image := filepath.Join(dir, comm(guest)+".ckpt")
		decodeCkptFile(t, image)

		s := h.NewSandbox(t, harness.Opts{Platform: p, Persist: true, Cwd: dir})
		r = s.Run(t, s.DoArgs(h.Bin, "checkpt", "-r", image)...)
		r.WantExit(t, 0)
		if r.Stdout != "kill 0 errno 0\nafter 0\nafter 1\nafter 2\n" {
			t.Errorf("thawed output = %q, want the rest of the run after kill(2)", r.Stdout)
		}
	})
}
