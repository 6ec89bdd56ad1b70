package test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// inetWant lists what the thawed obj_inet guest must report (every property 1).
var inetWant = []string{
	"l4_name", "l4_listening", "l4_opts", "l4_bufs", "l4_nonblock", "l4_client",
	"l6_name", "l6_v6only", "l6_client", "l6_no_v4",
	"unbound_name", "unbound_opts", "bound_name",
	"pair_peers", "pair_unread", "pair_talk", "pair_opts",
	"mapped_families", "mapped_unread", "mapped_talk",
	"udp_queue", "udp_name", "udp6_queue", "udp6_dualstack", "udp_connected",
	"reset_type", "reset_unread", "reset_errors", "reset_unconnected", "half_closed", "half_closed_talk", "l4_queue", "unaccepted_queued", "udp6_unbound", "icmp_stub", "done",
}

// checkInetGuest fails t unless out has every property of inetWant set to 1.
func checkInetGuest(t *testing.T, r *harness.Result) {
	t.Helper()
	for _, k := range inetWant {
		if field(r.Stdout, k) != "1" {
			t.Errorf("%s=%q, want 1:\n%s", k, field(r.Stdout, k), r)
		}
	}
}

// TestObjInet: obj_inet holds TCP and UDP sockets of every state (listening v4 and v6-only,
// unbound, bound, two loopback connections one of them v4-mapped, UDP with queued datagrams and
// connected, a connection to a peer outside the image) and checks them after a thaw in a new
// sandbox and in the same one (the guest, and the child holding the outside peer, are killed
// first, so the ports are free again). inspect shows the objects.
func TestObjInet(t *testing.T) {
	guest := h.BuildC(t, "obj_inet")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		t.Run("new-sandbox", func(t *testing.T) {
			img := filepath.Join(h.NewDir(t), "inet.ckpt")
			frozen := frozenGuest(t, p, "r=0 errno=0", guest, img)
			for _, k := range []string{"after_freeze_udp", "after_freeze_pair"} {
				if field(frozen.Stdout, k) != "1" {
					t.Errorf("the freeze changed the sockets it captured: %s=%q\n%s", k, field(frozen.Stdout, k), frozen)
				}
			}
			out := runTool(t, h.Bin, "inspect", img)
			for _, want := range []string{
				"tcp listening 127.0.0.1:7001 backlog 6", "tcp6 listening [::]:7002 backlog 4",
				"tcp unbound", "tcp bound 127.0.0.1:7003", "tcp reset 127.0.0.1:", "-> 127.0.0.1:7020, 10 bytes unread",
				"udp bound 127.0.0.1:7004", "3 datagrams queued", "udp6 bound [::]:7011", "2 datagrams queued",
				"udp connected 127.0.0.1:7014 -> 127.0.0.1:7015", "udp6 unbound",
				"13 bytes unread", "9 bytes unread", "shut down for writing, 5 bytes unread",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("inspect lacks %q:\n%s", want, out)
				}
			}
			t.Logf("inspect:\n%s", out)
			r := checkpt(t, p, "-r", img)
			r.WantExit(t, 0)
			t.Logf("thawed:\n%s", r.Stdout)
			checkInetGuest(t, r)
		})
		t.Run("same-sandbox", func(t *testing.T) {
			img := filepath.Join(h.NewDir(t), "inet.ckpt")
			r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c",
				guest+" "+img+"; echo killed=$?; exec "+h.Bin+" checkpt -r "+img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, "r=0 errno=0") || !strings.Contains(r.Stdout, "killed=137") {
				t.Fatalf("the guest did not freeze and die:\n%s", r)
			}
			checkInetGuest(t, r)
		})
	})
}

// TestObjInetPython: a python3 server frozen with a listening socket and a connected pair; after
// the thaw (new sandbox, and the same one) a new client connects to the listener and the pair
// still talks.
func TestObjInetPython(t *testing.T) {
	script := filepath.Join(h.Root, "test", "guests", "obj_inet.py")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		img := filepath.Join(h.NewDir(t), "py.ckpt")
		frozenGuest(t, p, "r=0 errno=0", "/usr/bin/python3", script, img)
		r := checkpt(t, p, "-r", img)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "listener=True pair=True unixpair=True") {
			t.Errorf("thawed python3 (new sandbox):\n%s", r)
		}
		img2 := filepath.Join(h.NewDir(t), "py2.ckpt")
		r = h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c",
			"/usr/bin/python3 "+script+" "+img2+"; echo killed=$?; exec "+h.Bin+" checkpt -r "+img2)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "killed=137") || !strings.Contains(r.Stdout, "listener=True pair=True unixpair=True") {
			t.Errorf("thawed python3 (same sandbox):\n%s", r)
		}
	})
}

// TestObjInetPortBusy: thawing in the same sandbox while the frozen process still holds its
// listening port fails with EADDRINUSE (checkpt exit 5, the caller keeps running: the shell goes
// on); once the process is killed, the same image thaws and serves.
func TestObjInetPortBusy(t *testing.T) {
	script := filepath.Join(h.Root, "test", "guests", "obj_inet.py")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		dir := h.NewDir(t)
		img, out := filepath.Join(dir, "busy.ckpt"), filepath.Join(dir, "guest.out")
		sh := fmt.Sprintf(`/usr/bin/python3 %[1]s %[2]s keep > %[3]s & pid=$!
until grep -q "^r=" %[3]s; do sleep 0.05; done
cat %[3]s
%[4]s checkpt -r %[2]s; echo busy=$?
kill -9 $pid; wait $pid
exec %[4]s checkpt -r %[2]s`, script, img, out, h.Bin)
		r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c", sh)
		r.WantExit(t, 0)
		for _, want := range []string{"r=0 errno=0", "busy=5", "listener=True pair=True unixpair=True"} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, r)
			}
		}
		if !strings.Contains(r.Stderr, "address already in use") {
			t.Errorf("the busy thaw did not say EADDRINUSE:\n%s", r)
		}
	})
}

// TestObjInetFreezeOther: a python3 server blocked in accept() is frozen by another process
// (`checkpt -c PID`) and killed; thawed in a new sandbox, its accept() restarts on the rebuilt
// listener and serves the first client that connects. The image thawed is a second generation:
// the first thaw's process, frozen again, so the capture of rebuilt sockets is covered too.
func TestObjInetFreezeOther(t *testing.T) {
	server := filepath.Join(h.Root, "test", "guests", "obj_inet_server.py")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		dir := h.NewDir(t)
		img, ready := filepath.Join(dir, "server.ckpt"), filepath.Join(dir, "ready")
		r := h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c", fmt.Sprintf(
			"/usr/bin/python3 %s %s & P=$!; until [ -e %s ]; do sleep 0.05; done; %s checkpt -c $P -o %s; echo checkpt=$?; kill -9 $P",
			server, ready, ready, h.Bin, img))
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "checkpt=0") {
			t.Fatalf("checkpt -c:\n%s", r)
		}
		// One write(2): the thawed server prints to the same stdout.
		client := `import os, socket, time
for i in range(200):
    try:
        c = socket.create_connection(("127.0.0.1", 8766), timeout=10)
        break
    except ConnectionRefusedError:
        time.sleep(0.05)
os.write(1, b"client got " + c.makefile("rb").readline())`
		// Generation 2: the thawed server (its sockets rebuilt by a thaw) is frozen again the same
		// way in a second sandbox, and that image is thawed in a third.
		img2 := filepath.Join(dir, "server2.ckpt")
		r = h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c", fmt.Sprintf(
			"%[1]s checkpt -r %[2]s & T=$!; until grep -q python3 /proc/$T/comm; do sleep 0.05; done; %[1]s checkpt -c $T -o %[3]s; echo checkpt=$?; kill -9 $T",
			h.Bin, img, img2))
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "checkpt=0") {
			t.Fatalf("checkpt -c of the thawed server:\n%s", r)
		}
		r = h.Do(t, harness.Opts{Platform: p, Persist: true}, "/bin/sh", "-c", fmt.Sprintf(
			"%s checkpt -r %s & T=$!; /usr/bin/python3 -c '%s'; wait $T; echo thawed=$?", h.Bin, img2, client))
		r.WantExit(t, 0)
		for _, want := range []string{"client got alive", "served", "thawed=0"} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, r)
			}
		}
	})
}
