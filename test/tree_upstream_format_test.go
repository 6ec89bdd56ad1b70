package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// The containers also go through upstream's format: `checkpoint` without --format (the
// default, gvisor: docs/tree-format.md, "Choosing the format") and `restore` of that directory,
// which runsc-ckpt hands to upstream's restore unchanged. What is compared is what ps shows
// before the checkpoint (there is no manifest) with what it shows after the restore.

// checkpointUpstreamAndDelete checkpoints c in gVisor's own format (no --format, no
// --ckpt-format: the default), checks that the directory is not an ELF checkpoint, waits for the
// container to stop and deletes it. It returns the directory.
func checkpointUpstreamAndDelete(t *testing.T, c *harness.Container) string {
	t.Helper()
	dir := filepath.Join(h.NewDir(t), "ckpt")
	c.MustRun(t, "checkpoint", "--image-path", dir, c.ID)
	if treefmt.IsTreeDir(dir) {
		t.Fatalf("checkpoint without --format wrote an ELF checkpoint in %s; the default is gVisor's format", dir)
	}
	c.Wait(t)
	c.Delete(t, false)
	return dir
}

// psEntry is one process as psTree lists it: "ppid pgid sid state comm".
type psEntry struct {
	pid               string
	ppid, state, comm string
}

// psEntries splits psTree's lines.
func psEntries(ps map[string]string) []psEntry {
	var out []psEntry
	for pid, l := range ps {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		out = append(out, psEntry{pid: pid, ppid: f[0], state: f[3], comm: f[4]})
	}
	return out
}

// TestTreeUpstreamFormatOCI: the pipeline container of TestTreePipelineOCI (`producer | consumer`,
// a background job, a zombie whose parent reaps it when told) checkpointed in gVisor's format,
// deleted and restored: the same pids, parents, groups and sessions (ps inside), the pipeline goes
// on with nothing lost or duplicated, the zombie is reaped with its status 7, `wait %2` and `jobs`
// work in the restored shell.
func TestTreeUpstreamFormatOCI(t *testing.T) {
	reaper := h.BuildC(t, "tree_reaper")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := startTree(t, p, strings.ReplaceAll(pipelineScript, "@REAPER@", reaper))
		waitFor(t, 10*time.Second, func() bool { return strings.Count(readOut(t, a), "\n") >= 3 })
		before := psTree(t, a)
		var reaperPid, zombie, job2 string
		for _, e := range psEntries(before) {
			switch {
			case e.ppid == "1" && e.comm == comm(reaper):
				reaperPid = e.pid
			case e.ppid == "1" && e.comm == "sleep":
				job2 = e.pid
			}
		}
		for _, e := range psEntries(before) {
			if e.ppid == reaperPid && e.state == "Z" {
				zombie = e.pid
			}
		}
		if zombie == "" || job2 == "" {
			t.Fatalf("no zombie of the reaper or no job %%2 sleep before the checkpoint: %v", before)
		}
		dir := checkpointUpstreamAndDelete(t, a)
		lines := checkSequence(t, readOut(t, a))

		b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Cwd: a.Dir, Args: []string{"/nonexistent-never-run"}})
		b.MustRun(t, "restore", "--image-path", dir, "--bundle", a.Bundle, "--detach", b.ID)
		after := psTree(t, b)
		for _, e := range psEntries(before) {
			if e.pid != "1" && e.ppid != "1" && e.pid != zombie {
				continue // The producer's 0.2 s sleeps come and go.
			}
			if after[e.pid] != before[e.pid] {
				t.Errorf("pid %s: %q after the restore, %q before the checkpoint", e.pid, after[e.pid], before[e.pid])
			}
		}

		checkPipelineRestored(t, a, b, lines, reaperPid, zombie, job2)
	})
}

// TestTreeServerUpstreamFormatOCI: the server container of TestTreeServerOCI (a two-threaded
// master, three workers accepting on one listening socket, a client of the container connected
// to one of them) checkpointed in gVisor's format, deleted and restored: the same processes,
// new clients are answered by the workers, and the connected client's next exchange is answered
// by the worker of its first.
func TestTreeServerUpstreamFormatOCI(t *testing.T) {
	server := h.BuildC(t, "tree_server", "-pthread")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		a := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Args: []string{server, "serve", "8080", "3", "client.log"}})
		a.RunDetached(t)
		a.WaitForOutput(t, "ready")
		a.Exec(t, server, "once", "8080", "first").WantExit(t, 0)
		before := psTree(t, a)
		workers := map[string]bool{}
		var client string
		for _, e := range psEntries(before) {
			if e.ppid != "1" {
				continue
			}
			r := a.Exec(t, busybox, "ls", "/proc/"+e.pid+"/task")
			r.WantExit(t, 0)
			switch len(strings.Fields(r.Stdout)) {
			case 3:
				workers[e.pid] = true
			case 1:
				client = e.pid
			}
		}
		if len(workers) != 3 || client == "" {
			t.Fatalf("no three three-threaded workers and a client before the checkpoint: %v", before)
		}
		dir := checkpointUpstreamAndDelete(t, a)
		log := filepath.Join(a.Dir, "client.log")
		first, _ := os.ReadFile(log)

		b := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Cwd: a.Dir, Args: []string{"/nonexistent-never-run"}})
		b.MustRun(t, "restore", "--image-path", dir, "--bundle", a.Bundle, "--detach", b.ID)
		if after := psTree(t, b); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("processes after the restore: %v, before the checkpoint: %v", after, before)
		}
		checkServerRestored(t, b, server, workers, client, log, first)
	})
}
