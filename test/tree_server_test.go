package test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// TestTreeServerOCI: the server container (test/guests/tree_server.c): a multi-threaded
// master listening on 127.0.0.1:8080, three workers that accept on that one listening socket with
// two threads each, and a client of the container's own connected to one of them. Checkpointed
// with --format=elf, deleted and restored from the directory:
//   - the listening socket is one shared object of the manifest (master and every worker), and
//     the restore rebuilds it once: every worker accepts on it again and serves new clients
//     (runsc exec), each answered by one of the recorded worker pids;
//   - the client connected before the checkpoint keeps its connection (a loopback connection
//     between two processes of the tree is rebuilt as one connection, docs/tree-format.md): its
//     next exchange is answered by the worker that served its first;
//   - same pids, parents, groups and sessions as recorded, and the same thread ids in each process.
//
// A client outside the container cannot exist here (the harness runs every sandbox with
// --network=none): its connection would come back reset after its unread bytes (docs/sockets.md,
// TestObjInet), since its peer is in no image of the checkpoint.
func TestTreeServerOCI(t *testing.T) {
	server := h.BuildC(t, "tree_server", "-pthread")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Args: []string{server, "serve", "8080", "3", "client.log"}})
		a.RunDetached(t)
		a.WaitForOutput(t, "ready")
		r := a.Exec(t, server, "once", "8080", "first")
		r.WantExit(t, 0)
		if !strings.HasPrefix(r.Stdout, "worker ") {
			t.Fatalf("the server did not answer before the checkpoint: %q", r.Stdout)
		}
		dir, m := checkpointTreeAndDelete(t, a)
		workers := map[string]bool{}
		var clientPid int32
		for _, pr := range m.Processes {
			switch {
			case pr.PPID == 1 && len(pr.TIDs) == 3:
				workers[fmt.Sprint(pr.PID)] = true
			case pr.PPID == 1 && len(pr.TIDs) == 1:
				clientPid = pr.PID
			}
		}
		if len(workers) != 3 || clientPid == 0 || len(m.Process(1).TIDs) != 2 {
			t.Fatalf("the checkpoint does not hold a two-threaded master, three three-threaded workers and the client: %+v", m.Processes)
		}
		shared := false
		for _, o := range m.Objects {
			pids := map[int32]bool{}
			for _, ref := range o.FDs {
				pids[ref.PID] = true
			}
			shared = shared || (o.Kind == "socket" && len(pids) >= 4)
		}
		if !shared {
			t.Errorf("the listening socket is not a shared object of the master and the workers: %+v", m.Objects)
		}
		log := filepath.Join(a.Dir, "client.log")
		before, _ := os.ReadFile(log)

		b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Cwd: a.Dir, Args: []string{"/nonexistent-never-run"}})
		b.MustRun(t, "restore", "--image-path", dir, "--bundle", a.Bundle, "--detach", b.ID)
		checkRestored(t, b, m)
		// Every process keeps its threads with their recorded ids (thread agents take each id
		// during the restore's ascending walk and the process thaws in place:
		// pkg/sentry/ckpt/thaw_tree_tids.go).
		for _, pr := range m.Processes {
			r := b.Exec(t, busybox, "ls", fmt.Sprintf("/proc/%d/task", pr.PID))
			r.WantExit(t, 0)
			got := strings.Fields(r.Stdout)
			want := make([]string, 0, len(pr.TIDs))
			for _, tid := range pr.TIDs {
				want = append(want, fmt.Sprint(tid))
			}
			slices.SortFunc(got, func(a, b string) int { return len(a)*1000 - len(b)*1000 + strings.Compare(a, b) })
			slices.SortFunc(want, func(a, b string) int { return len(a)*1000 - len(b)*1000 + strings.Compare(a, b) })
			if !slices.Equal(got, want) {
				t.Errorf("pid %d has threads %v after the restore, %v at the checkpoint", pr.PID, got, want)
			}
		}

		checkServerRestored(t, b, server, workers, fmt.Sprint(clientPid), log, before)
	})
}

// checkServerRestored checks the server container restored as b (tree_server serving port 8080
// in b's directory): new clients are answered by one of the workers (pids), and the client
// (pid client), told to exchange again, is answered by the worker of its first exchange: the line
// first in its log (the file log) at the checkpoint.
func checkServerRestored(t *testing.T, b *harness.Container, server string, workers map[string]bool, client, log string, first []byte) {
	t.Helper()
	// New clients: every answer comes from one of the restored workers.
	for i := range 4 {
		r := b.Exec(t, server, "once", "8080", fmt.Sprintf("new %d", i))
		r.WantExit(t, 0)
		var pid string
		if _, err := fmt.Sscanf(r.Stdout, "worker %s", &pid); err != nil || !workers[strings.TrimSuffix(pid, ":")] || !strings.Contains(r.Stdout, fmt.Sprintf(": new %d", i)) {
			t.Errorf("new client %d after the restore: %q, want an answer from one of the workers %v", i, r.Stdout, workers)
		}
	}

	// The client connected before the checkpoint goes on on its connection, with its worker.
	b.Exec(t, busybox, "kill", "-USR1", client).WantExit(t, 0)
	waitFor(t, 30*time.Second, func() bool { b, _ := os.ReadFile(log); return strings.Count(string(b), "\n") >= 2 })
	got, _ := os.ReadFile(log)
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")
	var worker string
	if len(lines) == 2 && strings.HasPrefix(lines[0], "before: worker ") {
		worker = strings.Fields(lines[0])[2]
	}
	if string(first) != lines[0]+"\n" || worker == "" || lines[1] != "after: worker "+worker+" hello 2" {
		t.Errorf("client.log: %q (at the checkpoint %q), want its second exchange answered by the worker of the first", got, first)
	}
}
