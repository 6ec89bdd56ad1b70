package test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// TestSidecarSentryIgnored puts an upstream-style sidecar sentry (gvisor-bin/gvisor_sentry) next
// to a copy of runsc-ckpt. runsc would run it instead of /proc/self/exe as the sandbox; runsc-ckpt
// must not (main pins GVISOR_SIDECAR_BINARIES_DIR to a non-existent directory), so the sandbox is
// ours and has sys_checkpoint.
func TestSidecarSentryIgnored(t *testing.T) {
	guest := h.BuildC(t, "ckpt_call")
	dir := h.NewDir(t)
	bin := filepath.Join(dir, "runsc-ckpt")
	copyFile(t, h.Bin, bin)
	marker := filepath.Join(dir, "sidecar-ran")
	sidecar := filepath.Join(dir, "gvisor-bin", "gvisor_sentry")
	if err := os.MkdirAll(filepath.Dir(sidecar), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sidecar, []byte("#!/bin/sh\ntouch "+marker+"\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := h.Do(t, harness.Opts{Binary: bin}, guest, "probe,5,-1,-1,0,none,int")
	r.WantExit(t, 0)
	if !strings.Contains(r.Stdout, "case probe ret=-1 errno=EOPNOTSUPP") {
		t.Errorf("sys_checkpoint did not answer from our sentry:\n%s", r)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the sidecar %s was run", sidecar)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
