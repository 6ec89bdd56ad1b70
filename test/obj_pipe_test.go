package test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// objPipeWant is what the thawed obj_pipe guest prints when every pipe and FIFO is as it was.
const objPipeWant = "capacity=1 data=1 flags=1 shared=1 connected=1 eof=1 readonly=1 writeonly=1 fifo=1 thread=1\n"

// objPipeFIFO is where obj_pipe makes its named pipe: the sandbox's own /tmp (a tmpfs), so that a
// new sandbox does not have it unless the test makes it there.
const objPipeFIFO = "/tmp/obj_pipe.fifo"

// TestObjPipe: pipes and FIFOs come back with their buffered bytes (docs/notes-thaw.md): a pipe
// with both ends in the image is one connected pipe with its capacity, 100000 unread bytes and
// per-end flags (a dup'd end shares its description); an end whose peer only a child held reads
// its bytes then EOF, or gets EPIPE; a named FIFO is reopened at its path with its bytes (once);
// a thread blocked reading a self-pipe across the freeze gets the bytes written after the thaw.
// Thawed in a new sandbox (which must have a FIFO at the path: without one, ESTALE) and in the same
// sandbox.
func TestObjPipe(t *testing.T) {
	guest := h.BuildC(t, "obj_pipe", "-pthread")
	bad := h.BuildC(t, "thaw_bad")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		opts := harness.Opts{Platform: p, Persist: true}
		t.Run("new_sandbox", func(t *testing.T) {
			img := filepath.Join(h.NewDir(t), "pipe.ckpt")
			frozenGuest(t, p, "r=0 errno=0", guest, img, objPipeFIFO)
			out := runTool(t, h.Bin, "inspect", img)
			for _, want := range []string{"anonymous, capacity 131072, 100000 bytes buffered", "named, capacity 65536, 9 bytes buffered", "anonymous, capacity 65536, 4 bytes buffered"} {
				if !strings.Contains(out, want) {
					t.Errorf("inspect does not show %q:\n%s", want, out)
				}
			}
			r := h.Do(t, opts, "/bin/sh", "-c", "mkfifo "+objPipeFIFO+" && exec "+h.Bin+" checkpt -r "+img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, "r=1 errno=0\n"+objPipeWant) {
				t.Errorf("thawed guest: want %q:\n%s", objPipeWant, r)
			}
			// No FIFO at the path in this sandbox: the thaw is refused, the caller goes on.
			r = h.Do(t, opts, bad, img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, "thaw=-1 errno=ESTALE\nalive") {
				t.Errorf("want ESTALE without the FIFO:\n%s", r)
			}
		})
		t.Run("same_sandbox", func(t *testing.T) {
			img := filepath.Join(h.NewDir(t), "pipe.ckpt")
			// The guest's stdout is a pipe here (fd 1 in the image): the thaw keeps its own fd 1.
			r := h.Do(t, opts, "/bin/sh", "-c", guest+" "+img+" "+objPipeFIFO+" | cat; exec "+h.Bin+" checkpt -r "+img)
			r.WantExit(t, 0)
			if !strings.Contains(r.Stdout, "r=0 errno=0\n") || !strings.Contains(r.Stdout, "r=1 errno=0\n"+objPipeWant) {
				t.Errorf("want a freeze, then a thawed guest printing %q:\n%s", objPipeWant, r)
			}
		})
	})
}
