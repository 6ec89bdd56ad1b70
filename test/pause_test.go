package test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/ckptabi"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// Tests of background image writes (docs/notes-pause.md): a freeze requested from outside the
// process (checkpt -c, SIGCKPT) snapshots the process, lets it run on at once and writes the image
// from the snapshot. The guest test/guests/pause_worker.c rewrites a buffer in passes meanwhile.

// pauseWorkerScript starts pause_worker in the background (progress file DIR/progress, bulk MiB of
// memory) and waits until it is ready; the shell variable pid holds its pid afterwards.
func pauseWorkerScript(guest, dir string, bulk int) string {
	return fmt.Sprintf(`%[1]s %[2]s/progress %[3]d > %[2]s/out & pid=$!
until grep -q ready %[2]s/out; do sleep 0.05; done
`, guest, dir, bulk)
}

// workerBuffer returns the buffer address pause_worker printed into DIR/out.
func workerBuffer(t *testing.T, dir string) uint64 {
	t.Helper()
	out, err := os.ReadFile(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`buffer=(0x[0-9a-f]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("worker output lacks its buffer address: %q", out)
	}
	buf, _ := strconv.ParseUint(string(m[1]), 0, 64)
	return buf
}

// checkOneInstant checks that the worker's buffer in image is one instant's memory: pages 0..k-1
// hold some pass n+1 and pages k.. pass n. It returns the image's pass of page 0.
func checkOneInstant(t *testing.T, image string, buf uint64) uint64 {
	t.Helper()
	p := decodeImage(t, image)
	img, err := os.Open(image)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	const pages = 4096
	first := uint64(readImageU32(t, img, p, buf))
	split := -1
	for pg := 1; pg < pages; pg++ {
		v := uint64(readImageU32(t, img, p, buf+uint64(pg)*4096))
		switch {
		case v == first && split < 0:
		case split < 0 && v+1 == first:
			split = pg
		case split >= 0 && v+1 == first:
		default:
			t.Fatalf("page %d holds pass %d after page 0's %d (split at %d): the image is not one instant's memory", pg, v, first, split)
		}
	}
	if first == 0 {
		t.Errorf("the buffer in the image was never written")
	}
	return first
}

// TestPauseRemoteRunsDuringWrite: a freeze of a single-threaded process by another one
// (sys_checkpoint(CKPT_FREEZE, pipe, pid), what `checkpt -c` does) writes the image into a pipe
// whose reader takes the first 64 KiB, then waits until the target has completed two more passes
// over its buffer before it reads the rest. With the target stopped for the write this would never
// finish (the script gives up after 30 s and prints "stalled"); with the snapshot it does, and
// the image is still one instant's memory.
func TestPauseRemoteRunsDuringWrite(t *testing.T) {
	guest := h.BuildC(t, "pause_worker")
	freezer := h.BuildC(t, "pause_freeze")
	h.ForEachPlatform(t, func(t *testing.T, platform string) {
		s := h.NewSandbox(t, harness.Opts{Platform: platform, Persist: true})
		img := filepath.Join(s.Dir, "remote.img")
		script := pauseWorkerScript(guest, s.Dir, 64) + freezeWhileRunningScript(freezer, img, s.Dir)
		r := s.Run(t, s.DoArgs("/bin/bash", "-c", script)...)
		wantRanDuringWrite(t, r)
		if p := decodeImage(t, img); len(p.Threads) != 1 {
			t.Errorf("image has %d threads, want 1", len(p.Threads))
		}
		checkOneInstant(t, img, workerBuffer(t, s.Dir))
	})
}

// freezeWhileRunningScript freezes the worker pauseWorkerScript started (shell variable pid) with
// the pause_freeze helper freezer into img, through a pipe whose reader takes the first 64 KiB and
// then waits until the worker has completed two more passes over its buffer (its progress file in
// dir) before it reads the rest. With the target stopped for the write it would never get there:
// the script gives up after 30 s and prints "during=stalled" instead of "during=ran". It prints
// "freeze=<the helper's status>" and kills the worker.
func freezeWhileRunningScript(freezer, img, dir string) string {
	return fmt.Sprintf(`
%[1]s $pid | {
	head -c 65536 > %[2]s
	p=$(cat %[3]s/progress); want=$((p + 2)); ok=stalled
	# A bound, not a timed assertion: a target stopped during the write never gets there.
	for i in $(seq 300); do if [ "$(cat %[3]s/progress)" -ge $want ]; then ok=ran; break; fi; sleep 0.1; done
	echo during=$ok
	cat >> %[2]s
}
echo freeze=${PIPESTATUS[0]}
kill -9 $pid`, freezer, img, dir)
}

// wantRanDuringWrite checks the result of a freezeWhileRunningScript: exit 0, the target ran
// during the write, and the freeze succeeded.
func wantRanDuringWrite(t *testing.T, r *harness.Result) {
	t.Helper()
	r.WantExit(t, 0)
	if !strings.Contains(r.Stdout, "during=ran\n") || !strings.Contains(r.Stdout, "freeze=0\n") {
		t.Fatalf("want the target running during the write and freeze=0:\n%s", r)
	}
}

// waitImageScript waits until the ckpt-file NAME exists in the working directory and no temporary
// file of it is left, or gives up after a minute (a bound against hanging, not a timed
// assertion); it prints "image=ok" or "image=none".
func waitImageScript(name string) string {
	return fmt.Sprintf(`st=none
for i in $(seq 600); do
	if [ -e %[1]s ] && ! ls -a | grep -q '^\.%[1]s\.tmp-'; then st=ok; break; fi
	sleep 0.1
done
echo image=$st
`, name)
}

// TestPauseSigckptConsistent: SIGCKPT to a single-threaded process that keeps rewriting its
// memory: the image is written in the background, appears under its name only when complete, and
// is one instant's memory.
func TestPauseSigckptConsistent(t *testing.T) {
	guest := h.BuildC(t, "pause_worker")
	h.ForEachPlatform(t, func(t *testing.T, platform string) {
		s := h.NewSandbox(t, harness.Opts{Platform: platform, Persist: true})
		name := comm(guest) + ".ckpt"
		script := "cd " + s.Dir + "\n" + pauseWorkerScript(guest, s.Dir, 64) + "kill -" + sigckptArg + " $pid\n" + waitImageScript(name) + "kill -9 $pid\n"
		r := s.Run(t, s.DoArgs("/bin/bash", "-c", script)...)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "image=ok\n") {
			t.Fatalf("no complete image:\n%s", r)
		}
		checkOneInstant(t, filepath.Join(s.Dir, name), workerBuffer(t, s.Dir))
	})
}

// TestPauseKilledDuringWrite: a process killed while its image is written in the background does
// not cut the image short. Via a freeze by another process into a pipe the kill lands during the write for sure
// (the pipe's reader sends it after the first 64 KiB): the image is complete and one instant's
// memory. Via SIGCKPT followed at once by SIGKILL the kill lands before, during or after the
// capture: the result is a complete image or none, and no temporary file is left.
func TestPauseKilledDuringWrite(t *testing.T) {
	guest := h.BuildC(t, "pause_worker")
	freezer := h.BuildC(t, "pause_freeze")
	h.ForEachPlatform(t, func(t *testing.T, platform string) {
		t.Run("checkpt", func(t *testing.T) {
			s := h.NewSandbox(t, harness.Opts{Platform: platform, Persist: true})
			img := filepath.Join(s.Dir, "killed.img")
			script := pauseWorkerScript(guest, s.Dir, 64) + fmt.Sprintf(`
%[1]s $pid | { head -c 65536 > %[2]s; kill -9 $pid; cat >> %[2]s; }
echo freeze=${PIPESTATUS[0]}
wait $pid; echo status=$?`, freezer, img)
			r := s.Run(t, s.DoArgs("/bin/bash", "-c", script)...)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, "freeze=0\n") || !strings.Contains(r.Stdout, "status=137") {
				t.Fatalf("want freeze=0 and the target killed (137):\n%s", r)
			}
			checkOneInstant(t, img, workerBuffer(t, s.Dir))
		})
		t.Run("sigckpt", func(t *testing.T) {
			s := h.NewSandbox(t, harness.Opts{Platform: platform, Persist: true})
			name := comm(guest) + ".ckpt"
			script := "cd " + s.Dir + "\n" + pauseWorkerScript(guest, s.Dir, 256) + "kill -" + sigckptArg + ` $pid; kill -9 $pid; wait $pid
st=none
for i in $(seq 600); do
	ls -a | grep -q '^\.` + name + `\.tmp-' || { st=settled; break; }
	sleep 0.1
done
echo tmp=$st
[ -e ` + name + ` ] && echo image=yes || echo image=no
`
			r := s.Run(t, s.DoArgs("/bin/bash", "-c", script)...)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, "tmp=settled\n") {
				t.Fatalf("a temporary image file is left behind:\n%s", r)
			}
			if strings.Contains(r.Stdout, "image=yes\n") {
				checkOneInstant(t, filepath.Join(s.Dir, name), workerBuffer(t, s.Dir))
			} else {
				t.Logf("the kill came before the capture: no image (allowed)")
			}
		})
	})
}

// TestPauseTwoSigckpts: two SIGCKPTs in a row (a process signalling itself, changing a counter in
// between) give two complete images, written in the background; the one left under the ckpt-file
// name is the second (renames follow the order of the snapshots).
func TestPauseTwoSigckpts(t *testing.T) {
	guest := h.BuildC(t, "pause_twice")
	h.ForEachPlatform(t, func(t *testing.T, platform string) {
		s := h.NewSandbox(t, harness.Opts{Platform: platform, Persist: true})
		name := comm(guest) + ".ckpt"
		r := s.Run(t, s.DoArgs(guest, s.Dir, name, "128")...)
		r.WantExit(t, 0)
		m := regexp.MustCompile(`counter=(0x[0-9a-f]+)\nkill1=0 kill2=0\ndone`).FindStringSubmatch(r.Stdout)
		if m == nil {
			t.Fatalf("guest output:\n%s", r)
		}
		addr, _ := strconv.ParseUint(m[1], 0, 64)
		image := filepath.Join(s.Dir, name)
		p := decodeImage(t, image)
		img, err := os.Open(image)
		if err != nil {
			t.Fatal(err)
		}
		defer img.Close()
		if got := readImageU32(t, img, p, addr); got != 2 {
			t.Errorf("the image left under %s holds counter %d, want 2 (the second SIGCKPT's)", name, got)
		}
		if p.SigInfo == nil || p.SigInfo.Signo != ckptabi.SIGCKPT {
			t.Errorf("image SigInfo = %+v, want SIGCKPT", p.SigInfo)
		}
	})
}

// TestPauseBackgroundCap: with --ckpt-background=1, a second freeze while one image is being
// written in the background fails with EAGAIN (11) before it stops anything; the first image is
// still complete.
func TestPauseBackgroundCap(t *testing.T) {
	guest := h.BuildC(t, "pause_worker")
	freezer := h.BuildC(t, "pause_freeze")
	h.ForEachPlatform(t, func(t *testing.T, platform string) {
		s := h.NewSandbox(t, harness.Opts{Platform: platform, Persist: true, Flags: []string{"--ckpt-background=1"}})
		img := filepath.Join(s.Dir, "first.img")
		script := pauseWorkerScript(guest, s.Dir, 64) + fmt.Sprintf(`
%[1]s $pid | { head -c 65536 > %[2]s; %[1]s $pid 2>&1 >/dev/null | sed 's/^/second: /'; cat >> %[2]s; }
echo first=${PIPESTATUS[0]}
kill -9 $pid`, freezer, img)
		r := s.Run(t, s.DoArgs("/bin/bash", "-c", script)...)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "second: freeze=-1 errno=11\n") || !strings.Contains(r.Stdout, "first=0\n") {
			t.Fatalf("want the second freeze refused with EAGAIN and the first one done:\n%s", r)
		}
		checkOneInstant(t, img, workerBuffer(t, s.Dir))
	})
}

// TestPauseAsyncAPI: CKPT_FREEZE_ASYNC returns once the snapshot is taken and CKPT_WAIT reports
// the outcome (test/guests/pause_async.c): an image into a file is one instant's (the counter
// changed right after the call is not in it) and thaws back into that call returning 1; a write
// into a pipe without reader is reported once as EPIPE; the ckpt-file appears; bad flags are
// EINVAL.
func TestPauseAsyncAPI(t *testing.T) {
	guest := h.BuildC(t, "pause_async")
	h.ForEachPlatform(t, func(t *testing.T, platform string) {
		s := h.NewSandbox(t, harness.Opts{Platform: platform, Persist: true})
		script := fmt.Sprintf("%[1]s %[2]s 64 && cd %[2]s && %[3]s checkpt -r async.img", guest, s.Dir, h.Bin)
		r := s.Run(t, s.DoArgs("/bin/bash", "-c", script)...)
		r.WantExit(t, 0)
		want := "async=0 errno=0\nwait=0 errno=0\nwait_idle=0 errno=0\nnohang_idle=0 errno=0\n" +
			"async_pipe=0 errno=0\nwait_pipe=-1 errno=32\nwait_again=0 errno=0\n" +
			"async_file=0 errno=0\nwait_file=0 errno=0\nckpt_file=yes\nwait_badflag=-1 errno=22\n" +
			"restored counter=1\n"
		if r.Stdout != want {
			t.Fatalf("guest output:\n%s\nwant:\n%s", r.Stdout, want)
		}
		decodeImage(t, filepath.Join(s.Dir, "async.img"))
	})
}

// TestPauseInitExitsDuringWrite: the sandbox's init sends itself SIGCKPT and exits at once, while
// its image is written in the background: its exit waits for the write, so the sandbox does not end
// before the image is complete, and no temporary file is left.
func TestPauseInitExitsDuringWrite(t *testing.T) {
	guest := h.BuildC(t, "pause_exit")
	h.ForEachPlatform(t, func(t *testing.T, platform string) {
		s := h.NewSandbox(t, harness.Opts{Platform: platform, Persist: true})
		r := s.Run(t, s.DoArgs(guest, "256")...)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "kill=0\n") {
			t.Fatalf("guest output:\n%s", r)
		}
		left, err := filepath.Glob(filepath.Join(s.Dir, ".*.tmp-*"))
		if err != nil || len(left) != 0 {
			t.Errorf("temporary image files left: %v %v", left, err)
		}
		if p := decodeImage(t, filepath.Join(s.Dir, comm(guest)+".ckpt")); p.Info.PID != 1 {
			t.Errorf("image of pid %d, want 1", p.Info.PID)
		}
	})
}
