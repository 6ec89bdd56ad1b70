package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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

// wantNoImages fails t if dir holds a *.ckpt file.
func wantNoImages(t *testing.T, dir string) {
	t.Helper()
	if m, _ := filepath.Glob(filepath.Join(dir, "*.ckpt")); len(m) > 0 {
		t.Errorf("unexpected images: %v", m)
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

// TestSigckptGuestSyscalls sends SIGCKPT to the guest itself through each of the six wrapped
// syscalls: the image appears as %N.ckpt in the cwd, with the guest's pid and the right si_code,
// and the guest keeps running.
func TestSigckptGuestSyscalls(t *testing.T) {
	cases := []struct {
		mode string
		code int32
	}{
		{"kill", siUser},
		{"tkill", siTkill},
		{"tgkill", siTkill},
		{"sigqueue", siQueue},
		{"tgsigqueue", siQueue},
		{"pidfd", siUser},
	}
	guest := sigckptGuest(t)
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		for _, c := range cases {
			t.Run(c.mode, func(t *testing.T) {
				r, dir := runGuest(t, p, nil, c.mode, 62)
				r.WantExit(t, 0)
				wantLines(t, r.Stdout, c.mode+" 0 errno 0", "after 2")
				pid := lineValue(t, r.Stdout, "pid")
				img := decodeCkptFile(t, filepath.Join(dir, comm(guest)+".ckpt"))
				if img.Info.PID != int32(pid) || img.Info.Name != comm(guest) {
					t.Errorf("image of pid %d %q, want pid %d %q", img.Info.PID, img.Info.Name, pid, comm(guest))
				}
				wantSigInfo(t, img, 62, c.code, int32(pid))
			})
		}
	})
}

// TestSigckptOtherProcess: a parent sends SIGCKPT to its child; the child writes the image and
// keeps ticking to the end.
func TestSigckptOtherProcess(t *testing.T) {
	guest := sigckptGuest(t)
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		r, dir := runGuest(t, p, nil, "child", 62)
		r.WantExit(t, 0)
		wantLines(t, r.Stdout, "kill 0 errno 0", "child tick 29", "child status 0", "after 2")
		parent, child := lineValue(t, r.Stdout, "pid"), lineValue(t, r.Stdout, "child")
		img := decodeCkptFile(t, filepath.Join(dir, comm(guest)+".ckpt"))
		if img.Info.PID != int32(child) {
			t.Errorf("image of pid %d, want the child %d", img.Info.PID, child)
		}
		wantSigInfo(t, img, 62, siUser, int32(parent))
	})
}

// TestSigckptThreads: a thread-directed SIGCKPT is carried out by that thread, and a
// process-directed one by a thread that does not block it; the image holds both threads, the
// freezing one first.
func TestSigckptThreads(t *testing.T) {
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		for _, mode := range []string{"thread", "maskedmain"} {
			t.Run(mode, func(t *testing.T) {
				r, dir := runGuest(t, p, nil, mode, 62)
				r.WantExit(t, 0)
				wantLines(t, r.Stdout, "after 2")
				worker := lineValue(t, r.Stdout, "thread")
				img := decodeCkptFile(t, filepath.Join(dir, comm(sigckptGuest(t))+".ckpt"))
				if len(img.Threads) != 2 || img.Threads[0].TID != int32(worker) {
					var tids []int32
					for _, th := range img.Threads {
						tids = append(tids, th.TID)
					}
					t.Errorf("image threads %v, want 2 with the worker %d first", tids, worker)
				}
			})
		}
	})
}

// TestSigckptProcessGroup: kill(0, SIGCKPT) and pidfd_send_signal(PIDFD_SIGNAL_PROCESS_GROUP)
// checkpoint both processes of the group; with --ckpt-file=%N.%P.ckpt each writes its own image.
func TestSigckptProcessGroup(t *testing.T) {
	guest := sigckptGuest(t)
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		for _, c := range []struct{ mode, call string }{{"pgrp", "kill"}, {"pidfdpgrp", "pidfd"}} {
			t.Run(c.mode, func(t *testing.T) {
				r, dir := runGuest(t, p, []string{"--ckpt-file=%N.%P.ckpt"}, c.mode, 62)
				r.WantExit(t, 0)
				wantLines(t, r.Stdout, c.call+" 0 errno 0", "child tick 29", "after 2")
				parent, child := lineValue(t, r.Stdout, "pid"), lineValue(t, r.Stdout, "child")
				for _, pid := range []int{parent, child} {
					img := decodeCkptFile(t, filepath.Join(dir, fmt.Sprintf("%s.%d.ckpt", comm(guest), pid)))
					if img.Info.PID != int32(pid) {
						t.Errorf("image %d.ckpt holds pid %d", pid, img.Info.PID)
					}
					wantSigInfo(t, img, 62, siUser, int32(parent))
				}
			})
		}
	})
}

// TestSigckptKillAll: kill(-1, SIGCKPT) checkpoints every process the sender may signal except
// itself and init (here: the guest's other child only).
func TestSigckptKillAll(t *testing.T) {
	guest := sigckptGuest(t)
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		r, dir := runGuest(t, p, []string{"--ckpt-file=%N.%P.ckpt"}, "killall", 62)
		r.WantExit(t, 0)
		wantLines(t, r.Stdout, "killall 0 errno 0", "children done", "after 2")
		ticker, sender := lineValue(t, r.Stdout, "child"), lineValue(t, r.Stdout, "sender")
		img := decodeCkptFile(t, filepath.Join(dir, fmt.Sprintf("%s.%d.ckpt", comm(guest), ticker)))
		wantSigInfo(t, img, 62, siUser, int32(sender))
		images, _ := filepath.Glob(filepath.Join(dir, "*.ckpt"))
		if len(images) != 1 {
			t.Errorf("images %v, want only the ticking child's", images)
		}
	})
}

// TestSigckptHandledIgnoredBlocked: a handler runs instead of the checkpoint, an ignored
// SIGCKPT does nothing, and a blocked one is carried out at once (not left pending, so
// unblocking it does not kill the process).
func TestSigckptHandledIgnoredBlocked(t *testing.T) {
	guest := sigckptGuest(t)
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		t.Run("handler", func(t *testing.T) {
			r, dir := runGuest(t, p, nil, "handler", 62)
			r.WantExit(t, 0)
			wantLines(t, r.Stdout, "kill 0 errno 0", "handled 62", "after 2")
			wantNoImages(t, dir)
		})
		t.Run("ignored", func(t *testing.T) {
			r, dir := runGuest(t, p, nil, "ignore", 62)
			r.WantExit(t, 0)
			wantLines(t, r.Stdout, "kill 0 errno 0", "after 2")
			wantNoImages(t, dir)
		})
		t.Run("blocked", func(t *testing.T) {
			r, dir := runGuest(t, p, nil, "blocked", 62)
			r.WantExit(t, 0)
			wantLines(t, r.Stdout, "kill 0 errno 0", "pending 0", "unblocked", "after 2")
			decodeCkptFile(t, filepath.Join(dir, comm(guest)+".ckpt"))
		})
	})
}

// TestSigckptExit: SIGCKPTEXIT writes the image, then the process dies as if killed by signal 63.
func TestSigckptExit(t *testing.T) {
	guest := sigckptGuest(t)
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		r, dir := runGuest(t, p, nil, "kill", 63)
		r.WantExit(t, 128+63)
		if strings.Contains(r.Stdout, "after 0") {
			t.Errorf("the guest ran on after SIGCKPTEXIT:\n%s", r)
		}
		img := decodeCkptFile(t, filepath.Join(dir, comm(guest)+".ckpt"))
		wantSigInfo(t, img, 63, siUser, int32(lineValue(t, r.Stdout, "pid")))
	})
}

// TestSigckptSignalFlag: --ckpt-signal=40 makes 40 the checkpoint signal, and 62 an ordinary
// signal again (its default action terminates).
func TestSigckptSignalFlag(t *testing.T) {
	guest := sigckptGuest(t)
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		r, dir := runGuest(t, p, []string{"--ckpt-signal=40"}, "kill", 40)
		r.WantExit(t, 0)
		wantLines(t, r.Stdout, "kill 0 errno 0", "after 2")
		wantSigInfo(t, decodeCkptFile(t, filepath.Join(dir, comm(guest)+".ckpt")), 40, siUser, 1)

		r, dir = runGuest(t, p, []string{"--ckpt-signal=40"}, "kill", 62)
		r.WantExit(t, 128+62)
		wantNoImages(t, dir)
	})
}

// TestSigckptFileTemplate: --ckpt-file expands %N, %P, %U and %%.
func TestSigckptFileTemplate(t *testing.T) {
	guest := sigckptGuest(t)
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		r, dir := runGuest(t, p, []string{"--ckpt-file=img-%N-%P-%U-%%.ckpt"}, "kill", 62)
		r.WantExit(t, 0)
		name := fmt.Sprintf("img-%s-%d-0-%%.ckpt", comm(guest), lineValue(t, r.Stdout, "pid"))
		decodeCkptFile(t, filepath.Join(dir, name))
	})
}

// TestSigckptErrnos: the wrapped syscalls fail like the originals (ESRCH, EINVAL, EPERM for a
// sender that may not signal the target), and --ckpt-group refuses a sender outside the group
// with EPERM. No image is written in any case.
func TestSigckptErrnos(t *testing.T) {
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		t.Run("esrch_einval", func(t *testing.T) {
			r, dir := runGuest(t, p, nil, "esrch", 62)
			r.WantExit(t, 0)
			wantLines(t, r.Stdout, "kill -1 errno 3", "tkill -1 errno 22", "tgkill -1 errno 3")
			wantNoImages(t, dir)
		})
		t.Run("eperm_not_permitted", func(t *testing.T) {
			r, dir := runGuest(t, p, nil, "eperm", 62)
			r.WantExit(t, 0)
			wantLines(t, r.Stdout, "kill -1 errno 1", "child status 0")
			wantNoImages(t, dir)
		})
		t.Run("eperm_ckpt_group", func(t *testing.T) {
			r, dir := runGuest(t, p, []string{"--ckpt-group=7"}, "kill", 62)
			r.WantExit(t, 0)
			wantLines(t, r.Stdout, "kill -1 errno 1", "after 2")
			wantNoImages(t, dir)
		})
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

// TestSigckptHost sends checkpoint signals from the host with `runsc-ckpt kill` to a running
// container: SIGCKPT by name (image, the guest ticks on), by number with --pid, an unknown pid
// (ESRCH), a handled SIGCKPT (the handler runs, no image), an ordinary TERM (upstream's kill,
// unchanged), and SIGCKPTEXIT (image, then exit status 128+63).
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
		wantSigInfo(t, img, 62, siUser, -1)
		ticks := strings.Count(c.GuestStdout(), "tick ")
		c.WaitForOutput(t, fmt.Sprintf("tick %d\n", ticks+2))

		if err := os.Remove(image); err != nil {
			t.Fatal(err)
		}
		c.MustRun(t, "kill", "--pid", "1", c.ID, "62")
		waitForFile(t, image, 30*time.Second)
		wantSigInfo(t, decodeCkptFile(t, image), 62, siUser, -1)

		r := c.Run(t, "kill", "--pid", "999", c.ID, "SIGCKPT")
		if r.ExitCode == 0 || !strings.Contains(r.Stderr, "no such process") {
			t.Errorf("kill --pid 999: want failure with ESRCH, got:\n%s", r)
		}

		if err := os.Remove(image); err != nil {
			t.Fatal(err)
		}
		c.Kill(t, "SIGCKPTEXIT")
		if code := c.Wait(t); code != 128+63 {
			t.Errorf("exit status after SIGCKPTEXIT %d, want %d", code, 128+63)
		}
		wantSigInfo(t, decodeCkptFile(t, image), 63, siUser, -1)
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
		c.WaitForOutput(t, "handler 62\n")
		wantNoImages(t, c.Dir)
		c.Kill(t, "TERM")
		if code := c.Wait(t); code != 128+15 {
			t.Errorf("exit status after TERM %d, want %d", code, 128+15)
		}
	})
}

// TestSigckptHostAllAndGroup: `kill --all` and `kill --pgid` reach every process of the
// container; the host side uses the sandbox's checkpoint signal (40 here, by number and by name);
// with ckpt-group 7 the host route still works (the helper gets the group), while the same group
// refuses guests outside it (TestSigckptErrnos).
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
				wantSigInfo(t, proc, 40, siUser, -1)
				if err := os.Remove(img); err != nil {
					t.Fatal(err)
				}
			}
		}
		ticks := strings.Count(c.GuestStdout(), "tick ")
		c.WaitForOutput(t, fmt.Sprintf("tick %d\n", ticks+1))
	})
}

// TestSigckptThaw: an image written by SIGCKPT thaws (`checkpt -r`, in a new sandbox) into a
// process that resumes right after its kill(2) call, which returns 0 there too.
func TestSigckptThaw(t *testing.T) {
	guest := sigckptGuest(t)
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		r, dir := runGuest(t, p, nil, "kill", 62)
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
