package test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// TestObjInetAcceptQueue freezes obj_inet_accept (TCP listeners, v4, v6 and dual-stack, with
// connections never accepted: two clients of the process itself around one of a child process, an
// IPv6 client, an IPv4 client of an IPv6 listener, a listener whose only pending client is the
// child), kills it and thaws it in a new sandbox and in the same one. After the thaw accept()
// returns the clients of the image in their order, from their own ports, with the bytes they had
// sent, connected both ways; the child's connections are gone.
func TestObjInetAcceptQueue(t *testing.T) {
	guest := h.BuildC(t, "obj_inet_accept")
	thawNewAndSame(t, objThaw{guest: guest, img: "accept.ckpt", want: "all=1\n", inspect: []string{
		"tcp listening 127.0.0.1:47401 backlog 5, 29 options, accept queue: 3 connections (10 bytes sent by their clients); tcp connected 127.0.0.1:",
		"-> 127.0.0.1:47401, 29 options, client 0 of the accept queue; tcp connected 127.0.0.1:",
		"-> 127.0.0.1:47401, shut down for writing, 29 options, client 2 of the accept queue",
		"tcp6 listening [::1]:47402 backlog 3, 28 options, accept queue: 1 connections (3 bytes sent by their clients); tcp6 connected [::1]:",
		"tcp6 listening [::]:47403 backlog 3, 28 options, accept queue: 1 connections (3 bytes sent by their clients); tcp connected 127.0.0.1:",
		"tcp listening 127.0.0.1:47404 backlog 2, 29 options, accept queue: 1 connections (3 bytes sent by their clients)\n",
	}})
}

// TestObjInetAcceptQueueLive: a freeze that does not kill the process leaves every TCP accept
// queue as it was (the freeze only reads it): after its own freeze the guest accepts every
// connection, the child's included, in the original order.
func TestObjInetAcceptQueueLive(t *testing.T) {
	guest := h.BuildC(t, "obj_inet_accept")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		img := filepath.Join(h.NewDir(t), "live.ckpt")
		r := h.Do(t, harness.Opts{Platform: p, Persist: true}, guest, img, "live")
		r.WantExit(t, 0)
		if !strings.Contains(r.Stdout, "all=1\n") {
			t.Errorf("live freeze:\n%s", r)
		}
		// The image has the accept queue: the listener and its two clients are one object.
		p2 := decodeImage(t, img)
		var found bool
		for _, o := range p2.Objects {
			if b, ok := o.Body.(*imgfmt.InetSocketObject); ok && len(b.Ends) == 3 && b.AcceptListener() == 0 && len(b.Ends[0].AcceptQueue) == 3 {
				found = true
			}
		}
		if !found {
			t.Errorf("no listener object with its 3-connection accept queue and 2 clients: %+v", p2.Objects)
		}
	})
}

// TestTreeTCPAcceptQueueOCI: a container whose init listens on 127.0.0.1:47411 with two
// connections it never accepted, one from its own client socket and one from its child
// (test/guests/tree_accept.c with "tcp"), is checkpointed with --format=elf, deleted and restored.
// The child's image records its socket as connected to a peer outside it; the parent's lists the
// connection in its listener's accept queue; the restore joins them: the parent accepts its own
// client's connection, then the child's, each with its bytes, and the two processes talk over it.
func TestTreeTCPAcceptQueueOCI(t *testing.T) {
	guest := h.BuildC(t, "tree_accept")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := startGuestTree(t, p, guest, "accept.log", "tcp")
		dir, m := checkpointTreeAndDelete(t, a)
		if len(m.Processes) != 2 || m.Process(2) == nil || m.Process(2).PPID != 1 {
			t.Fatalf("the checkpoint does not hold the parent and its child: %+v", m.Processes)
		}
		img := decodeImage(t, filepath.Join(dir, m.Process(1).Image))
		var queued int
		for _, o := range img.Objects {
			if b, ok := o.Body.(*imgfmt.InetSocketObject); ok && b.AcceptListener() >= 0 {
				queued = len(b.Ends[b.AcceptListener()].AcceptQueue)
			}
		}
		if queued != 2 {
			t.Errorf("the parent's listener has %d connections in its accept queue, want 2: %+v", queued, img.Objects)
		}

		r := restoreLogged(t, p, a, dir, m, "accept.log")
		r.kill(t, logHas("parent done"), "-USR1", "1")
		r.kill(t, logHas("second message"), "-USR1", "2")
		r.checkLines(t, 10)
	})
}
