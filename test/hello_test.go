package test

import (
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// TestDoHelloC runs a static C guest with `runsc-ckpt do`: its output and exit code come back.
func TestDoHelloC(t *testing.T) {
	guest := h.BuildC(t, "hello")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		r := h.Do(t, harness.Opts{Platform: p}, guest, "7", "seven")
		r.WantExit(t, 7)
		if !strings.Contains(r.Stdout, "hello from the sandbox: 7 seven\n") {
			t.Errorf("stdout lacks the greeting:\n%s", r)
		}
		if !strings.Contains(r.Stderr, "hello on stderr") {
			t.Errorf("stderr lacks the guest's line:\n%s", r)
		}
	})
}

// TestDoHelloGo runs a static Go guest with `runsc-ckpt do`.
func TestDoHelloGo(t *testing.T) {
	guest := h.BuildGo(t, "hellogo")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		r := h.Do(t, harness.Opts{Platform: p}, guest, "3", "go")
		r.WantExit(t, 3)
		if !strings.Contains(r.Stdout, "hello from Go in the sandbox: 3 go\n") {
			t.Errorf("stdout lacks the greeting:\n%s", r)
		}
	})
}

// TestBundleLifecycle runs a guest as an OCI bundle: create, start, wait (exit status), delete.
func TestBundleLifecycle(t *testing.T) {
	guest := h.BuildC(t, "hello")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		c := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p}, Args: []string{guest, "5", "bundle"}})
		c.Create(t)
		if st := c.State(t); st.Status != "created" {
			t.Errorf("state after create = %+v, want created", st)
		}
		c.Start(t)
		if code := c.Wait(t); code != 5 {
			t.Errorf("wait: exit status %d, want 5", code)
		}
		if out := c.GuestStdout(); !strings.Contains(out, "hello from the sandbox: 5 bundle\n") {
			t.Errorf("guest stdout = %q", out)
		}
		c.Delete(t, false)
		if ids := c.Containers(t); len(ids) != 0 {
			t.Errorf("containers left after delete: %v", ids)
		}
	})
}
