package test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// TestObjUnixSockets freezes obj_unix (every kind of AF_UNIX socket: pairs of each type with data
// queued, a socket whose peer is another process, listening sockets on an abstract name and on a
// path, a bound datagram socket with messages from named and unnamed senders, options, shutdown
// state), kills it and thaws it in a new sandbox and, separately, in the sandbox it was frozen in.
// The guest checks each socket after the thaw (docs/sockets.md) and prints all=1 if all are right.
func TestObjUnixSockets(t *testing.T) {
	guest := h.BuildC(t, "obj_unix")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		t.Run("new-sandbox", func(t *testing.T) {
			img := filepath.Join(h.NewDir(t), "unix.ckpt")
			frozenGuest(t, p, "r=0 errno=0", guest, img, "new")
			out := runTool(t, h.Bin, "inspect", img)
			for _, want := range []string{"unix-socket", "listening backlog 2 (0 pending)", "listening backlog 3 (1 pending)",
				"3 fds in flight (2 reopened, 1 dropped)", "shut-wr, 2 messages 5 bytes queued", "passcred", "connected to \"/tmp/obj_unix_new.d\""} {
				if !strings.Contains(out, want) {
					t.Errorf("inspect does not show %q:\n%s", want, out)
				}
			}
			r := checkpt(t, p, "-r", img)
			wantAllUnix(t, r)
		})
		t.Run("same-sandbox", func(t *testing.T) {
			img := filepath.Join(h.NewDir(t), "unix.ckpt")
			// The frozen process is killed; its abstract name is free again, its socket files
			// stay behind as stale files the thaw replaces.
			sh := fmt.Sprintf("%s %s same; %s checkpt -r %s", guest, img, h.Bin, img)
			r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c", sh)
			if !strings.Contains(r.Stdout, "r=0 errno=0") {
				t.Fatalf("the freeze did not succeed:\n%s", r)
			}
			wantAllUnix(t, r)
		})
	})
}

// wantAllUnix checks the thawed obj_unix's report.
func wantAllUnix(t *testing.T, r *harness.Result) {
	t.Helper()
	r.WantExit(t, 0)
	if !strings.Contains(r.Stdout, "all=1") || regexp.MustCompile(`(?m)^\w+=0$`).MatchString(r.Stdout) {
		t.Errorf("thawed obj_unix:\n%s", r)
	}
}

// TestObjUnixPython freezes a python3 program holding listening unix sockets (abstract and path)
// and connected socketpairs with queued data, kills it and thaws it in a new sandbox and in the
// same one: new clients connect to both listeners, the pairs keep their data and still talk. In the
// new sandbox the thawed program freezes again and that image is thawed in a third sandbox.
func TestObjUnixPython(t *testing.T) {
	script := filepath.Join(h.Root, "test", "guests", "obj_unix.py")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		t.Run("new-sandbox", func(t *testing.T) {
			dir := h.NewDir(t)
			img, img2 := filepath.Join(dir, "py.ckpt"), filepath.Join(dir, "py2.ckpt")
			frozenGuest(t, p, "r=0 errno=0", "/usr/bin/python3", script, img, "new", img2)
			// Thawed, it checks its sockets, then freezes again (generation 2) and is killed.
			r := checkpt(t, p, "-r", img)
			r.WantExit(t, 128+9)
			if !strings.Contains(r.Stdout, "all=True") || !strings.Contains(r.Stdout, "r=1 errno=0\n") {
				t.Errorf("thawed obj_unix.py:\n%s", r)
			}
			r = checkpt(t, p, "-r", img2)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, "gen2_all=True") {
				t.Errorf("thawed generation 2 of obj_unix.py:\n%s", r)
			}
		})
		t.Run("same-sandbox", func(t *testing.T) {
			img := filepath.Join(h.NewDir(t), "py.ckpt")
			sh := fmt.Sprintf("/usr/bin/python3 %s %s same; %s checkpt -r %s", script, img, h.Bin, img)
			r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c", sh)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, "r=0 errno=0") || !strings.Contains(r.Stdout, "all=True") {
				t.Errorf("thawed obj_unix.py:\n%s", r)
			}
		})
	})
}

// TestObjUnixAddressInUse thaws obj_unix in a sandbox where another process holds one of its
// addresses (the abstract name, or the listening path with a live socket on it): the thaw fails
// with EADDRINUSE before the caller is touched (checkpt reports it and exits 5). A name held only by
// a socket at fd 0 (which stays the thawer's) is not needed: that thaw succeeds.
func TestObjUnixAddressInUse(t *testing.T) {
	guest := h.BuildC(t, "obj_unix")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		img := filepath.Join(h.NewDir(t), "unix.ckpt")
		frozenGuest(t, p, "r=0 errno=0", guest, img, "busy")
		for name, addr := range map[string]string{"abstract": `"\0obj_unix_busy"`, "path": `"/tmp/obj_unix_busy.l"`,
			"stdin": `"\0obj_unix_busy_stdin"`} {
			t.Run(name, func(t *testing.T) {
				marker := filepath.Join(h.NewDir(t), "bound")
				holder := fmt.Sprintf(`import socket, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.bind(%s)
s.listen(1)
open(%q, "w").close()
time.sleep(300)`, addr, marker)
				sh := fmt.Sprintf("/usr/bin/python3 -c '%s' & while [ ! -e %s ]; do sleep 0.05; done; %s checkpt -r %s; echo rc=$?; kill $!",
					holder, marker, h.Bin, img)
				r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c", sh)
				if name == "stdin" {
					// fd 0 stays the thawer's: its socket's name is not needed, the thaw succeeds.
					if !strings.Contains(r.Stdout, "all=1") || !strings.Contains(r.Stdout, "rc=0") {
						t.Errorf("want the thaw to succeed:\n%s", r)
					}
					return
				}
				if !strings.Contains(r.Stdout, "rc=5") || !strings.Contains(r.Stderr, "address already in use") || strings.Contains(r.Stdout, "all=") {
					t.Errorf("want the thaw refused with EADDRINUSE:\n%s", r)
				}
			})
		}
	})
}

// TestObjUnixHostSocket freezes a guest whose stdout is a unix socket on the host (host-backed
// inside the sandbox; the guest keeps a dup of it at fd 20): the freeze must not fail, and the
// thawed fd 20 is a stream socket whose peer is gone (EPIPE, ECONNRESET), not a pipe.
func TestObjUnixHostSocket(t *testing.T) {
	guest := h.BuildC(t, "obj_unix_host")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		dir := h.NewDir(t)
		img := filepath.Join(dir, "host.ckpt")
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		ours, theirs := os.NewFile(uintptr(fds[0]), "ours"), os.NewFile(uintptr(fds[1]), "theirs")
		defer ours.Close()
		cmd := exec.Command(h.Bin, "--root="+filepath.Join(dir, "root"), "--network=none", "--platform="+p,
			"do", "-cwd="+dir, "-force-overlay=false", guest, img)
		cmd.Stdout = theirs
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		theirs.Close()
		out, _ := io.ReadAll(ours)
		cmd.Wait()
		if !strings.Contains(string(out), "r=0 errno=0") {
			t.Fatalf("the freeze with a host socket as stdout did not succeed: stdout %q, stderr %s", out, stderr.String())
		}
		r := checkpt(t, p, "-r", img)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "host_type=1 host_epipe=1 host_reset=1") {
			t.Errorf("thawed obj_unix_host:\n%s", r)
		}
	})
}

// TestObjUnixPathTaken thaws obj_unix where a regular file sits at its listening socket's path:
// the thaw fails with EADDRINUSE and the file is left alone (only socket files are replaced).
func TestObjUnixPathTaken(t *testing.T) {
	guest := h.BuildC(t, "obj_unix")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		img := filepath.Join(h.NewDir(t), "unix.ckpt")
		frozenGuest(t, p, "r=0 errno=0", guest, img, "file")
		sh := fmt.Sprintf("echo keep > /tmp/obj_unix_file.l; %s checkpt -r %s; echo rc=$?; cat /tmp/obj_unix_file.l", h.Bin, img)
		r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c", sh)
		if !strings.Contains(r.Stdout, "rc=5\nkeep\n") || !strings.Contains(r.Stderr, "address already in use") {
			t.Errorf("want EADDRINUSE and the file kept:\n%s", r)
		}
	})
}

// TestObjUnixMissingDirectory thaws an obj_unix image whose listening socket's path is in a
// directory that does not exist in the thawing sandbox: the thaw fails with ESTALE (a path the
// image names has vanished; checkpt exits 5), nothing is half done.
func TestObjUnixMissingDirectory(t *testing.T) {
	guest := h.BuildC(t, "obj_unix")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		dir := h.NewDir(t)
		img := filepath.Join(dir, "unix.ckpt")
		frozenGuest(t, p, "r=0 errno=0", guest, img, "nodir")
		good, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		moved := 0
		bad := reencode(t, good, func(pr *imgfmt.Process) {
			for _, o := range pr.Objects {
				if u, ok := o.Body.(*imgfmt.UnixSocketObject); ok && u.Ends[0].Addr == "/tmp/obj_unix_nodir.l" {
					u.Ends[0].Addr = "/obj-unix-no-such-dir/l"
					moved++
				}
			}
		})
		if moved != 1 {
			t.Fatalf("found %d listening sockets on /tmp/obj_unix_nodir.l in the image, want 1", moved)
		}
		badImg := filepath.Join(dir, "nodir.ckpt")
		if err := os.WriteFile(badImg, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		r := checkpt(t, p, "-r", badImg)
		r.WantExit(t, 5)
		if !strings.Contains(r.Stderr, "stale file handle") {
			t.Errorf("want ESTALE:\n%s", r)
		}
	})
}
