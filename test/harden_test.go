package test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/vfsfh"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// Regression tests for the bugs of issue 13 (hardening), one test per item.

// TestCheckptWithoutProc (issue 13 item 3): the guest tool runs in a sandbox that has no /proc.
// It used to die in gVisor's platform package init (reading /proc/sys/vm/mmap_min_addr) before
// checkpt's code ran: exit 2 with a Go panic. checkpt freezes a sleeper both as `runsc-ckpt
// checkpt` and under the name checkpt (a symlink), and a thaw of a missing image fails cleanly.
func TestCheckptWithoutProc(t *testing.T) {
	sleeper := h.BuildC(t, "sleeper")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		dir := h.NewDir(t)
		link := filepath.Join(dir, "checkpt")
		if err := os.Symlink(h.Bin, link); err != nil {
			t.Fatal(err)
		}
		script := sleeper + " 600 & pid=$!\n" +
			h.Bin + " checkpt -c $pid -o " + dir + "/a.ckpt; echo freeze1=$?\n" +
			link + " -c $pid -o " + dir + "/b.ckpt; echo freeze2=$?\n" +
			link + " -r " + dir + "/missing.ckpt; echo thaw=$?\n" +
			"kill -9 $pid; echo done\n"
		c := h.Bundle(t, harness.BundleOpts{
			Opts: harness.Opts{Platform: p, Persist: true},
			Args: []string{"/bin/sh", "-c", script},
			Cwd:  dir,
		})
		withoutProc(t, c)
		c.RunDetached(t)
		if code := c.Wait(t); code != 0 {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, c.GuestStdout(), c.GuestStderr())
		}
		out, errs := c.GuestStdout(), c.GuestStderr()
		for _, want := range []string{"freeze1=0\n", "freeze2=0\n", "thaw=5\n", "done\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("want %q in stdout:\n%s\nstderr:\n%s", want, out, errs)
			}
		}
		if strings.Contains(errs, "panic") || !strings.Contains(errs, "checkpt: thaw of "+dir+"/missing.ckpt failed") {
			t.Errorf("stderr:\n%s", errs)
		}
		for _, img := range []string{"a.ckpt", "b.ckpt"} {
			decodeImage(t, filepath.Join(dir, img))
		}
	})
}

// withoutProc rewrites c's config.json without the /proc mount, with an empty tmpfs in its place:
// what a container image's empty /proc directory looks like (the harness's root file system is the
// host's /, whose /proc directory the gofer would otherwise show).
func withoutProc(t *testing.T, c *harness.Container) {
	t.Helper()
	var mounts []specs.Mount
	for _, m := range c.Spec.Mounts {
		if m.Destination == "/proc" {
			m = specs.Mount{Destination: "/proc", Type: "tmpfs", Source: "tmpfs"}
		}
		mounts = append(mounts, m)
	}
	c.Spec.Mounts = mounts
	b, err := json.MarshalIndent(c.Spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.Bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestThawImageRewritten (issue 13 item 11): a thaw mapped the image file lazily, so whoever could
// write the image changed the running program's memory after the thaw (rewrite) or killed it with
// SIGBUS (truncation). An image that a user other than its owner may write (here mode 0666) is now
// copied into private memory before the thaw; the program reads its pattern back intact after the
// image is overwritten with zeros and truncated.
func TestThawImageRewritten(t *testing.T) {
	guest := h.BuildC(t, "image_guard")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		dir := h.NewDir(t)
		img, gofile := filepath.Join(dir, "guard.ckpt"), filepath.Join(dir, "go")
		frozenGuest(t, p, "r=0\n", guest, img, gofile)
		if err := os.Chmod(img, 0o666); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "thawed.out")
		script := h.Bin + " checkpt -r " + img + " > " + out + " 2>&1 & pid=$!\n" +
			"while ! grep -q thawed " + out + "; do sleep 0.05; done\n" +
			"dd if=/dev/zero of=" + img + " bs=1M count=8 conv=notrunc 2>/dev/null && truncate -s 4096 " + img + " && touch " + gofile + "\n" +
			"wait $pid; echo status=$?; cat " + out + "\n"
		r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c", script)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "status=0\n") || !strings.Contains(r.Stdout, "pattern=ok\n") {
			t.Errorf("the thawed program's memory changed with its image:\n%s", r)
		}
	})
}

// TestThawSessionAndGroup (issue 13 item 9): a thawed program kept its thawer's session and process
// group, so a program that had called setsid() and later kill(0, SIGTERM) signalled its thawer's
// group (a shell, an init). A thaw now makes the program lead a new session (or process group) again
// when it led one at the freeze and setsid/setpgid allow it (here: a thaw by `sh -c`, whose child
// leads nothing).
func TestThawSessionAndGroup(t *testing.T) {
	guest := h.BuildC(t, "thaw_session")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		for _, mode := range []string{"session", "group"} {
			t.Run(mode, func(t *testing.T) {
				dir := h.NewDir(t)
				img := filepath.Join(dir, mode+".ckpt")
				h.Do(t, harness.Opts{Platform: p, Persist: true}, guest, img, mode).WantExit(t, 0)
				r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c", h.Bin+" checkpt -r "+img+"; echo rc=$?")
				r.WantExit(t, 0)
				want := "r=1 sid_leader=1 pgid_leader=1\n"
				if mode == "group" {
					want = "r=1 sid_leader=0 pgid_leader=1\n"
				}
				if !strings.Contains(r.Stdout, want) || !strings.Contains(r.Stdout, "rc=0\n") {
					t.Errorf("want %q:\n%s", want, r)
				}
			})
		}
	})
}

// TestFreezeStuckInSocketIsAbortable (issue 13 item 12): a freeze whose image write blocks in a
// socket nobody reads keeps the process's other threads stopped; it must end, leaving the process
// running, as soon as the process gets a signal (here a handled SIGINT, with the process's sibling
// thread parked) or another freeze comes (SIGCKPT, which then writes its own image). The issue's
// report of an uninterruptible wait was not reproduced by these routes on this code; the test
// keeps them working.
func TestFreezeStuckInSocketIsAbortable(t *testing.T) {
	guest := h.BuildC(t, "freeze_stuck", "-pthread")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		for _, c := range []struct{ name, signal, want string }{
			{"sigint", "INT", "freeze=-1 errno=4 sigint=1\nalive\n"},
			{"sigckpt", sigckptArg, "freeze=-1 errno=4 sigint=0\nalive\n"},
		} {
			t.Run(c.name, func(t *testing.T) {
				dir := h.NewDir(t)
				out := filepath.Join(dir, "out")
				// SIGCKPT's image is written in the background (docs/notes-pause.md) and renamed
				// into place when complete, possibly after the guest has exited: wait for it
				// (bounded) before listing the directory.
				waitImage := ""
				if c.name == "sigckpt" {
					waitImage = "i=0; while [ $i -lt 1200 ] && ! ls " + dir + " | grep -q '[.]ckpt$'; do sleep 0.05; i=$((i+1)); done\n"
				}
				script := guest + " > " + out + " 2>&1 & pid=$!\n" +
					"while ! grep -q ready " + out + "; do sleep 0.05; done\nsleep 0.5\n" +
					"kill -" + c.signal + " $pid; wait $pid; echo status=$?; cat " + out + "\n" + waitImage + "ls " + dir + "\n"
				r := h.Do(t, harness.Opts{Platform: p, Persist: true, Cwd: dir, Timeout: 60 * time.Second}, "/bin/sh", "-c", script)
				r.WantExit(t, 0)
				if !strings.Contains(r.Stdout, "status=0\n") || !strings.Contains(r.Stdout, c.want) {
					t.Errorf("want %q and status 0:\n%s", c.want, r)
				}
				if c.name == "sigckpt" && !strings.Contains(r.Stdout, ".ckpt\n") {
					t.Errorf("SIGCKPT wrote no image:\n%s", r)
				}
			})
		}
	})
}

// TestMigrateFilesWrittenInSandbox (issue 13 item 7): a file written (or chmod'ed) inside the
// freezing sandbox and mapped by reference is recorded with the sentry's cached mtime and ctime;
// a new sandbox sees the host's, microseconds to milliseconds apart, and refused the thaw with
// ESTALE although the file had not changed.
func TestMigrateFilesWrittenInSandbox(t *testing.T) {
	basic := h.BuildC(t, "freeze_basic")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		for _, c := range []struct{ name, prep string }{
			{"written", "head -c 4096 /dev/zero | tr '\\0' M > map.dat"},
			{"chmod", "chmod 0600 map.dat"},
		} {
			t.Run(c.name, func(t *testing.T) {
				dir := h.NewDir(t)
				if err := os.WriteFile(filepath.Join(dir, "map.dat"), []byte(strings.Repeat("M", 4096)), 0o644); err != nil {
					t.Fatal(err)
				}
				freeze := "cd " + dir + " && " + c.prep + " && " + basic + " img.ckpt map.dat log.txt"
				r := h.Do(t, harness.Opts{Platform: p, Persist: true, Cwd: dir}, "/bin/sh", "-c", freeze)
				r.WantExit(t, 0)
				r = h.Do(t, harness.Opts{Platform: p, Persist: true, Cwd: dir}, h.Bin, "checkpt", "-r", filepath.Join(dir, "img.ckpt"))
				if !strings.Contains(r.Stdout, "freeze=1 errno=0 ") {
					t.Errorf("the thaw in a new sandbox failed:\n%s", r)
				}
			})
		}
	})
}

// TestThawReplacedFile (issue 13 item 6): an fd's file is reopened by path and was checked by type
// only, so a file replaced after the freeze (a new file renamed over the path) was reopened and the
// thawed program read a different file from its old offset. A file born after the freeze is now
// stale (ESTALE); a file rewritten in place (the same file, e.g. a log) is still reopened.
func TestThawReplacedFile(t *testing.T) {
	basic := h.BuildC(t, "freeze_basic")
	bad := h.BuildC(t, "thaw_bad")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		for _, c := range []struct{ name, change, want string }{
			{"replaced", "echo new > log.new && mv log.new log.txt", "thaw=-1 errno=ESTALE\nalive canary=5eed\n"},
			{"rewritten", "echo more >> log.txt && : > log.txt", "freeze=1 errno=0 "},
		} {
			t.Run(c.name, func(t *testing.T) {
				dir := h.NewDir(t)
				if err := os.WriteFile(filepath.Join(dir, "map.dat"), []byte(strings.Repeat("M", 4096)), 0o644); err != nil {
					t.Fatal(err)
				}
				img := filepath.Join(dir, "img.ckpt")
				h.Do(t, harness.Opts{Platform: p, Persist: true, Cwd: dir}, basic, img, "map.dat", "log.txt").WantExit(t, 0)
				time.Sleep(2 * vfsfhTimeSlack) // The replacement is born clearly after the freeze.
				r := h.Do(t, harness.Opts{Platform: p, Persist: true, Cwd: dir}, "/bin/sh", "-c", "cd "+dir+" && "+c.change+" && exec "+bad+" "+img)
				if !strings.Contains(r.Stdout, c.want) {
					t.Errorf("want %q:\n%s", c.want, r)
				}
			})
		}
	})
}

// vfsfhTimeSlack is vfsfh.TimeSlack as a duration.
const vfsfhTimeSlack = vfsfh.TimeSlack * time.Nanosecond

// TestTreeAgentFlagRefused (issue 13, CKPT_THAW_TREE's internal agent flag): a guest that passes
// the flag (1<<30) with the id of a restore under way is refused with EINVAL at once. Before, it
// waited in a 1 ms loop that only SIGKILL ended, for ever once that restore had finished. The
// guest restores a frozen subtree 8 times while a child and a grandchild of the restorer make
// such calls in a loop; every call must be EINVAL and both spinners must end when told.
func TestTreeAgentFlagRefused(t *testing.T) {
	guest := h.BuildC(t, "tree_agent_flag")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := startTree(t, p, "sh -c 'sleep 100000; exit 3' &\necho $! > subtree\necho ready\nwhile :; do wait; done\n")
		pid, err := os.ReadFile(filepath.Join(a.Dir, "subtree"))
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(a.Dir, "tree")
		a.Exec(t, h.Bin, "checkpt", "-c", "-t", strings.TrimSpace(string(pid)), "-o", dir, "-k").WantExit(t, 0)
		r := a.Exec(t, guest, dir, "8")
		t.Logf("%s", r.Stdout)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "restored=8\n") {
			t.Errorf("the guest did not restore the subtree 8 times:\n%s", r.Stdout)
		}
	})
}

// TestTreeFreezeMessageSocket (docs/fuzzing.md, finding 5): a tree freeze into a datagram or
// seqpacket unix socket whose buffer has room, but not for the next whole chunk of the stream,
// spun on the CPU, unkillable, since the socket reports itself writable while the write would
// block; with the default buffer, smaller than the stream's largest writes, it failed with EIO
// (EMSGSIZE). Unread, the freezer must wait in the call and go at SIGKILL, its tree running on;
// drained, the freeze must complete, and so must a single-process freeze into such a socket.
func TestTreeFreezeMessageSocket(t *testing.T) {
	guest := h.BuildC(t, "tree_freeze_msgsock")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		r := h.Do(t, harness.Opts{Platform: p}, guest)
		r.WantExit(t, 0)
		var want strings.Builder
		for _, typ := range []string{"dgram", "dgram-1m", "seqpacket", "seqpacket-1m"} {
			for _, c := range []string{"blocked", "killed", "resumed", "drained", "bytes", "single"} {
				fmt.Fprintf(&want, "%s %s=1\n", typ, c)
			}
		}
		want.WriteString("ok\n")
		if r.Stdout != want.String() {
			t.Errorf("guest output:\n%s\nwant:\n%s\nstderr:\n%s", r.Stdout, want.String(), r.Stderr)
		}
	})
}

// TestTreeFreezeStuckDoesNotHoldSandbox (docs/fuzzing.md, finding 4): a tree freeze with
// CKPT_TREE_KILL stuck writing into a pipe nobody reads keeps its tree parked, but nothing else:
// a ptracer elsewhere keeps seizing and detaching its child, tree freezes of that pair return,
// the caller's process can fork, and the stuck freeze fails with EPIPE once the reader leaves.
// (The fuzzer's lock-up, all of these waiting on gVisor's TaskSet lock, was seen once on ptrace
// and not reproduced since; this is the situation it started from.)
func TestTreeFreezeStuckDoesNotHoldSandbox(t *testing.T) {
	guest := h.BuildC(t, "tree_freeze_stuck")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		r := h.Do(t, harness.Opts{Platform: p, Persist: true}, guest)
		r.WantExit(t, 0)
		want := "stuck=1\nprogress=1\nfork=1\nstuck_freeze ret=-1 errno=EPIPE\nok\n"
		if r.Stdout != want {
			t.Errorf("guest output:\n%s\nwant:\n%s", r.Stdout, want)
		}
	})
}
