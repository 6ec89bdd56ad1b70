package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// fsScript fills the container's in-sandbox filesystems (tmpfs /tmp and /dev/shm, the root
// overlay in memory: the working directory), changes the hostname, then keeps checking that its
// files are there (a restored process must find them from its first instruction on).
const fsScript = `
echo hello > /tmp/a; chmod 640 /tmp/a; chown 1234:5678 /tmp/a
mkdir /tmp/d; chmod 710 /tmp/d; echo deep > /tmp/d/b; ln -s a /tmp/l
echo shm > /dev/shm/s; chmod 600 /dev/shm/s
echo up > upper.txt
hostname changed-host
echo ready
while :; do cat /tmp/a /dev/shm/s upper.txt > /dev/null || echo MISSING; sleep 0.1; done
`

// fsCheck prints what fsScript made, for comparison before and after.
const fsCheck = `stat -c '%n %a %u %g %s' /tmp/a /tmp/d /tmp/d/b /dev/shm/s upper.txt; cat /tmp/a /tmp/d/b /dev/shm/s upper.txt; readlink /tmp/l; hostname`

// TestTreeCheckpointFilesystems: a whole-container ELF checkpoint carries the container's tmpfs
// mounts (/tmp, /dev/shm) and its in-memory root overlay's changes, and the hostname; after the
// container is deleted, a restore from the directory has the files again, with their content,
// modes and owners, before any restored process runs (the restored loop never misses a file).
func TestTreeCheckpointFilesystems(t *testing.T) {
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		needBusybox(t)
		mounts := []specs.Mount{
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"mode=1777"}},
		}
		opts := harness.Opts{Platform: p} // The root overlay in memory (--overlay2=root:memory).
		a := h.Bundle(t, harness.BundleOpts{Opts: opts, Mounts: mounts, Args: []string{busybox, "sh", "-c", fsScript}})
		a.RunDetached(t)
		a.WaitForOutput(t, "ready")
		want := a.Exec(t, busybox, "sh", "-c", fsCheck)
		want.WantExit(t, 0)
		if !strings.Contains(want.Stdout, "/tmp/a 640 1234 5678 6") || !strings.Contains(want.Stdout, "changed-host") {
			t.Fatalf("the container did not set up its files:\n%s", want)
		}

		dir := filepath.Join(h.NewDir(t), "ckpt")
		a.MustRun(t, "checkpoint", "--format=elf", "--image-path", dir, a.ID)
		m, err := treefmt.VerifyDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, fa := range m.Filesystems {
			got[fa.Path] = fa.Kind
		}
		for path, kind := range map[string]string{"/tmp": treefmt.KindTmpfs, "/dev/shm": treefmt.KindTmpfs, "/": treefmt.KindRootfsUpper} {
			if got[path] != kind {
				t.Errorf("manifest filesystems %v: want %s archived as %s", m.Filesystems, path, kind)
			}
		}
		insp := a.Run(t, "inspect", dir)
		insp.WantExit(t, 0)
		if !strings.Contains(insp.Stdout, "in-sandbox filesystems") || !strings.Contains(insp.Stdout, "/dev/shm") {
			t.Errorf("inspect does not list the archived filesystems:\n%s", insp.Stdout)
		}
		if m.Version != treefmt.VersionDigest || m.Hostname != "changed-host" {
			t.Errorf("manifest version %d, hostname %q; want %d (archives, CRC-32C digests), changed-host", m.Version, m.Hostname, treefmt.VersionDigest)
		}
		for _, fa := range m.Filesystems {
			if d, err := fa.RecordedDigest(); err != nil || d.Alg != treefmt.DigestCRC32C || fa.SHA256 != "" {
				t.Errorf("archive of %s: digest %v, %v (sha256 %q); want a CRC-32C one in digest", fa.Path, d, err, fa.SHA256)
			}
		}
		a.Wait(t)
		a.Delete(t, false)
		if _, err := os.Stat(filepath.Join(a.Dir, "upper.txt")); err == nil {
			t.Fatal("upper.txt reached the host: the root overlay is not in memory")
		}

		b := h.Bundle(t, harness.BundleOpts{Opts: opts, Mounts: mounts, Args: []string{"/nonexistent-never-run"}})
		b.RestoreDetached(t, "--image-path", dir, "--bundle", a.Bundle)
		after := b.Exec(t, busybox, "sh", "-c", "cd "+a.Dir+" && "+fsCheck)
		after.WantExit(t, 0)
		if after.Stdout != want.Stdout {
			t.Errorf("after restore:\n%s\nbefore the checkpoint:\n%s", after.Stdout, want.Stdout)
		}
		// The restored loop has run a few rounds by now (restore waits until it runs).
		if out := b.GuestStdout(); strings.Contains(out, "MISSING") {
			t.Errorf("a restored process missed its files:\n%s", out)
		}
		if st := b.State(t); st.Status != "running" {
			t.Errorf("restored container is %q", st.Status)
		}

		// A sandbox without a root overlay gets the tmpfs contents but not the root's changes,
		// and says so.
		c := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p, Persist: true}, Mounts: mounts, Args: []string{"/nonexistent-never-run"}})
		r := c.Run(t, "restore", "--image-path", dir, "--bundle", a.Bundle, "--detach", c.ID)
		r.WantExit(t, 0)
		if !strings.Contains(r.Stderr, "are not restored: this sandbox has no root overlay") {
			t.Errorf("restore without a root overlay did not warn:\n%s", r.Stderr)
		}
		got2 := c.Exec(t, busybox, "sh", "-c", "cat /tmp/a /dev/shm/s; cat "+a.Dir+"/upper.txt")
		if got2.Stdout != "hello\nshm\n" || got2.ExitCode == 0 {
			t.Errorf("without a root overlay: %s; want the tmpfs files and no upper.txt", got2)
		}
	})
}

// openFilesScript holds fds on a file of the root overlay's upper layer (3), of a tmpfs (4) and
// of a host directory bind-mounted as a volume (5), the way a shell caught in `echo >> log` does.
const openFilesScript = `
echo up > upper.txt; echo tmp > /tmp/a
exec 3<upper.txt 4</tmp/a 5<@VOL@/v
echo ready
while :; do sleep 0.1; done
`

// openFilesCheck prints what pid 1's fds 3-5 are and hold.
const openFilesCheck = `for n in 3 4 5; do readlink /proc/1/fd/$n; cat /proc/1/fd/$n; done`

// TestTreeRestoreOpenFiles: a container restore rebuilds the root overlay's changes and the tmpfs
// mounts from the checkpoint, so every file there is born after the freeze; the check that an
// fd's file was not replaced since the freeze (ESTALE) must not refuse those (an engine's restore
// of a shell caught appending to its log failed so). A file on a volume the host keeps is still
// checked: replaced on the host after the freeze, the restore is refused and leaves nothing.
func TestTreeRestoreOpenFiles(t *testing.T) {
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		needBusybox(t)
		vol := h.NewDir(t)
		if err := os.WriteFile(filepath.Join(vol, "v"), []byte("volume\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		mounts := []specs.Mount{
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"},
			{Destination: vol, Type: "bind", Source: vol, Options: []string{"rbind", "rw"}},
		}
		opts := harness.Opts{Platform: p} // The root overlay in memory.
		a := h.Bundle(t, harness.BundleOpts{Opts: opts, Mounts: mounts, Args: []string{busybox, "sh", "-c", strings.ReplaceAll(openFilesScript, "@VOL@", vol)}})
		a.RunDetached(t)
		a.WaitForOutput(t, "ready")
		want := a.Exec(t, busybox, "sh", "-c", openFilesCheck)
		want.WantExit(t, 0)
		for _, s := range []string{"/upper.txt\nup\n", "/tmp/a\ntmp\n", vol + "/v\nvolume\n"} {
			if !strings.Contains(want.Stdout, s) {
				t.Fatalf("the container's fds are not as set up (want %q):\n%s", s, want.Stdout)
			}
		}
		dir := filepath.Join(h.NewDir(t), "ckpt")
		a.MustRun(t, "checkpoint", "--format=elf", "--image-path", dir, a.ID)
		a.Wait(t)
		a.Delete(t, false)
		time.Sleep(2 * vfsfhTimeSlack) // What the restore makes is born clearly after the freeze.

		b := h.Bundle(t, harness.BundleOpts{Opts: opts, Mounts: mounts, Args: []string{"/nonexistent-never-run"}})
		b.MustRun(t, "restore", "--image-path", dir, "--bundle", a.Bundle, "--detach", b.ID)
		after := b.Exec(t, busybox, "sh", "-c", openFilesCheck)
		after.WantExit(t, 0)
		if after.Stdout != want.Stdout {
			t.Errorf("restored fds:\n%s\nbefore the checkpoint:\n%s", after.Stdout, want.Stdout)
		}
		b.Delete(t, true)

		// The volume's file replaced on the host: another file, so the restore is refused.
		v := filepath.Join(vol, "v")
		if err := os.WriteFile(v+".new", []byte("volume\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(v+".new", v); err != nil {
			t.Fatal(err)
		}
		c := h.Bundle(t, harness.BundleOpts{Opts: opts, Mounts: mounts, Args: []string{"/nonexistent-never-run"}})
		r := c.Run(t, "restore", "--image-path", dir, "--bundle", a.Bundle, "--detach", c.ID)
		if r.ExitCode == 0 {
			t.Fatalf("restore with the volume's file replaced succeeded:\n%s", r)
		}
		if log := c.DebugLogs(t); !strings.Contains(log, v+": stale file handle: replaced") {
			t.Errorf("the sandbox's log does not say the volume's file was replaced; restore said:\n%s", r.Stderr)
		}
		// The reason reaches the restore command's stderr (the container's, through the restore
		// init's fd 2) without the debug log: CKPT_TREE_REPORT.
		if !strings.Contains(r.Stderr, "runsc-ckpt restore: ") || !strings.Contains(r.Stderr, v+": stale file handle: replaced") {
			t.Errorf("the restore's stderr does not say the volume's file was replaced:\n%s", r.Stderr)
		}
		if st := c.Run(t, "state", c.ID); st.ExitCode == 0 {
			t.Errorf("a refused restore left container %s behind:\n%s", c.ID, st.Stdout)
		}
	})
}
