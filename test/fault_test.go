package test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// Faults (issue 13 item 5). ENOSPC mid-freeze, for an fd and for the ckpt-file, is
// TestFreezeErrno (a 1 MiB tmpfs: the call fails with ENOSPC, no partial image, the process runs
// on); an image rewritten or truncated under a lazily thawed program is TestThawImageRewritten.
// Here: the process, or its whole sandbox, killed while it writes its ckpt-file.

// faultMiB is how much memory the guest dirties: enough for its freeze to take a while.
const faultMiB = "384"

// checkNoPartialImage fails t if dir holds a ckpt-file (*.ckpt) that is not a complete image. It
// returns the names it found (temporary files included).
func checkNoPartialImage(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
		if !strings.HasSuffix(e.Name(), ".ckpt") {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		st, _ := f.Stat()
		if _, err := imgfmt.Decode(f, st.Size()); err != nil {
			t.Errorf("%s is a partial or broken image under its final name: %v", e.Name(), err)
		}
		f.Close()
	}
	return names
}

// TestFaultKilledMidFreeze: the freezing process killed by SIGKILL, and its sandbox killed (the
// sentry's host process), while the ckpt-file is being written: never a partial image under the
// ckpt-file's name (a temporary file may stay when the sandbox itself died).
func TestFaultKilledMidFreeze(t *testing.T) {
	guest := h.BuildC(t, "hostile_fault")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		for _, what := range []string{"process", "sandbox"} {
			t.Run(what, func(t *testing.T) {
				dir := h.NewDir(t)
				c := h.Bundle(t, harness.BundleOpts{
					Opts: harness.Opts{Platform: p, Persist: true, Flags: []string{"--ckpt-background=0"}},
					Args: []string{guest, faultMiB},
					Cwd:  dir,
				})
				c.Create(t)
				c.Start(t)
				c.WaitForOutput(t, "freezing\n")
				if what == "process" {
					c.Kill(t, "KILL")
				} else if err := syscall.Kill(sandboxPid(t, c), syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				c.Wait(t)
				names := checkNoPartialImage(t, dir)
				t.Logf("left in the directory: %v (guest said %q)", names, strings.TrimSpace(c.GuestStdout()))
				c.Delete(t, true)
			})
		}
	})
}
