package test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// TestThawNeverRaisesCredentials: an unprivileged user thaws an image rewritten to name a
// set-user-ID root binary as its executable (any file it can open will do), in a sandbox that
// honours set-id bits (--allow-suid). The thawed program then thaws again from there; that thaw
// execs the program's current executable, the set-id binary, and must be refused (EPERM) instead
// of running the image's memory as root. Without --allow-suid the second thaw is harmless and
// must succeed, which shows the first half of the test really exercises the set-id exec.
func TestThawNeverRaisesCredentials(t *testing.T) {
	guest := h.BuildC(t, "thaw_suid")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		dir := h.NewDir(t)
		img, crafted := filepath.Join(dir, "suid.ckpt"), filepath.Join(dir, "crafted.ckpt")
		frozenGuest(t, p, "r=0", guest, img)

		// A root-owned set-user-ID copy of the guest, and the image rewritten to name it.
		suid := filepath.Join(dir, "suid-root")
		data, err := os.ReadFile(guest)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(suid, data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(suid, 0, 0); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Chmod(suid, 0o4755); err != nil { // os.Chmod would drop S_ISUID (os.ModeSetuid)
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(suid, &st); err != nil {
			t.Fatal(err)
		}
		proc := decodeImage(t, img)
		exe := *proc.VM.Exe
		exe.Path, exe.Mode, exe.Size = suid, st.Mode, st.Size
		exe.MtimeNano, exe.CtimeNano = st.Mtim.Nano(), st.Ctim.Nano()
		proc.VM.Exe = &exe
		writeImageFile(t, crafted, proc)

		for _, c := range []struct {
			flags []string
			want  []string
		}{
			{[]string{"--allow-suid"}, []string{"r=1 euid=65534\n", "rethaw=-1 errno=1\n"}},
			{nil, []string{"r=1 euid=65534\n", "r=2 euid=65534\n"}},
		} {
			ct := h.Bundle(t, harness.BundleOpts{
				Opts: harness.Opts{Platform: p, Persist: true, Flags: c.flags},
				Args: []string{h.Bin, "checkpt", "-r", crafted},
				Cwd:  dir,
				User: specs.User{UID: 65534, GID: 65534},
			})
			ct.Create(t)
			ct.Start(t)
			code := ct.Wait(t)
			out := ct.GuestStdout()
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("flags %v: stdout lacks %q (exit %d):\n%s\nstderr:\n%s", c.flags, w, code, out, ct.GuestStderr())
				}
			}
			if strings.Contains(out, "euid=0") {
				t.Errorf("flags %v: the thawed program ran as root:\n%s", c.flags, out)
			}
			ct.Delete(t, true)
		}
	})
}

// writeImageFile encodes p into a new file at path (mode 0644).
func writeImageFile(t *testing.T, path string, p *imgfmt.Process) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := imgfmt.Encode(f, p); err != nil {
		t.Fatalf("encoding %s: %v", path, err)
	}
}
