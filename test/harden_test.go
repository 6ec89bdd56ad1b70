package test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
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
