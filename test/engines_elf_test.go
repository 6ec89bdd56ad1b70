package test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"github.com/runsc-ckpt/runsc-ckpt/test/engines"
)

// The ELF checkpoint format through the engines: each engine's runtime registration carries the
// global flag --ckpt-format=elf (Docker: runtimeArgs in daemon.json; ctr: a --runc-binary wrapper;
// Podman: --runtime-flag ckpt-format=elf), and the same run/checkpoint/restore/continue sequence
// as with the default format must work, with the image directory the engine keeps verified to be
// a tree checkpoint (docs/engines.md).

// engineFormat is a variant of the engine tests.
type engineFormat struct {
	elf    bool
	suffix string // Appended to container names, so the variants do not collide.
}

var (
	gvisorFormat = engineFormat{}
	elfFormat    = engineFormat{elf: true, suffix: "-elf"}
)

// tmpFiles are files the ELF variants put into the container's in-sandbox filesystems before the
// checkpoint: a tmpfs (/tmp in the busybox image is an empty directory, so runsc mounts a tmpfs
// there), /dev/shm, and the root overlay (where the counter file lives too).
const tmpFiles = `echo tmp > /tmp/f; chmod 604 /tmp/f; echo shm > /dev/shm/f; mkdir -p /var/d; echo root > /var/d/f`

// checkTmpFiles checks that the files of tmpFiles came back with the restored container.
func checkTmpFiles(t *testing.T, ex execFn) {
	t.Helper()
	got := ex(t, "sh", "-c", "cat /tmp/f /dev/shm/f /var/d/f; stat -c %a /tmp/f; grep -E ' /(tmp|dev/shm) ' /proc/mounts | cut -d' ' -f2,3")
	if want := "tmp\nshm\nroot\n604\n"; !strings.HasPrefix(got, want) {
		t.Errorf("after the restore the in-sandbox files are %q, want %q...", got, want)
	}
	t.Logf("restored in-sandbox files and mounts: %q", got)
}

// checkELFDir checks that dir holds a complete ELF tree checkpoint (manifest, images matching it)
// of the counting container, and that `runsc-ckpt inspect DIR` describes it.
func checkELFDir(t *testing.T, dir string) *treefmt.Manifest {
	t.Helper()
	m, err := treefmt.VerifyDir(dir)
	if err != nil {
		ents, _ := os.ReadDir(dir)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("the engine's image directory is not an ELF checkpoint: %v (holds %v)", err, names)
	}
	out := engines.MustRun(t, h.Bin, "inspect", dir)
	if !strings.Contains(out, "sh") {
		t.Errorf("inspect of the engine's checkpoint does not name the shell:\n%s", out)
	}
	t.Logf("ELF checkpoint %s: %d processes", dir, len(m.Processes))
	return m
}

// checkCtrCheckpointELF finds the checkpoint tarball that `ctr containers checkpoint` stored in
// containerd's content store for image ref, unpacks it and checks it is an ELF checkpoint.
func checkCtrCheckpointELF(t *testing.T, ctd *engines.Containerd, ref string) {
	t.Helper()
	ctr := ctd.Ctr("runsc-ckpt-test")
	// The checkpoint image's index lists the checkpoint tarball by media type.
	target := strings.Fields(engines.MustRun(t, append(ctr, "images", "ls", "name=="+ref)...))
	digest := ""
	for _, f := range target {
		if strings.HasPrefix(f, "sha256:") {
			digest = f
			break
		}
	}
	if digest == "" {
		t.Fatalf("ctr images ls does not list %s: %v", ref, target)
	}
	var index struct {
		Manifests []struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal([]byte(engines.MustRun(t, append(ctr, "content", "get", digest)...)), &index); err != nil {
		t.Fatalf("checkpoint index %s: %v", digest, err)
	}
	for _, d := range index.Manifests {
		if !strings.Contains(d.MediaType, "checkpoint.criu.tar") {
			continue
		}
		dir := filepath.Join(h.NewDir(t), "ctr-checkpoint")
		untar(t, []byte(engines.MustRun(t, append(ctr, "content", "get", d.Digest)...)), dir)
		checkELFDir(t, dir)
		return
	}
	t.Fatalf("the checkpoint index of %s has no checkpoint tarball: %+v", ref, index.Manifests)
}

// untarPrefix unpacks the regular files of a tar stream directly under prefix (with it removed)
// into dir and returns how many there were; everything else is skipped unread.
func untarPrefix(t *testing.T, r io.Reader, prefix, dir string) int {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(r)
	n := 0
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			t.Fatalf("reading the checkpoint tarball: %v", err)
		}
		name := strings.TrimPrefix(filepath.Clean(hdr.Name), "./")
		if hdr.Typeflag != tar.TypeReg || !strings.HasPrefix(name, prefix) || strings.Contains(name[len(prefix):], "/") {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, name[len(prefix):]), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, tr); err != nil {
			t.Fatal(err)
		}
		f.Close()
		n++
	}
}

// untar unpacks the regular files at the top of a tar archive into dir.
func untar(t *testing.T, archive []byte, dir string) {
	untarPrefix(t, bytes.NewReader(archive), "", dir)
}

// testPodmanELF: Podman with --runtime-flag ckpt-format=elf: checkpoint (the container stops),
// restore in place, checkpoint again into the same (reused, non-empty) directory with --export,
// remove, restore --import under another name; the counter continues each time.
func testPodmanELF(t *testing.T, env *engines.Env) {
	podman := env.Podman("ckpt-format=elf")
	run := func(args ...string) string { return engines.MustRun(t, append(podman, args...)...) }
	exec := func(name string) execFn {
		return func(t *testing.T, argv ...string) string {
			return engines.MustRun(t, append(append(podman, "exec", name), argv...)...)
		}
	}
	const tick, tick2 = "tick-elf", "tick2-elf"
	t.Cleanup(func() { engines.Run(nil, append(podman, "rm", "-f", tick, tick2)...) })

	run("run", "-d", "--name", tick, "--network", "none", engines.ImageName, "sh", "-c", tickScript)
	tok, before := waitCount(t, exec(tick), 5)
	exec(tick)(t, "sh", "-c", tmpFiles)
	id := strings.TrimSpace(run("inspect", "-f", "{{.Id}}", tick))

	run("container", "checkpoint", tick)
	if s := strings.TrimSpace(run("inspect", "-f", "{{.State.Running}}", tick)); s != "false" {
		t.Fatalf("after checkpoint the container is running=%s, want false", s)
	}
	dirs, _ := filepath.Glob(filepath.Join(env.Dir, "podman", "root", "*-containers", id, "userdata", "checkpoint"))
	if len(dirs) != 1 {
		t.Fatalf("Podman's checkpoint directory of %s not found: %v", id, dirs)
	}
	checkELFDir(t, dirs[0])
	if _, err := os.Stat(filepath.Join(dirs[0], "inventory.img")); err != nil {
		t.Errorf("no inventory.img for Podman: %v", err)
	}
	run("container", "restore", tick)
	n := checkContinues(t, exec(tick), tok, before)
	checkTmpFiles(t, exec(tick))

	// --leave-running: the container keeps counting, from the same run, and the directory
	// (reused again) holds an ELF checkpoint of it.
	run("container", "checkpoint", "--leave-running", tick)
	if s := strings.TrimSpace(run("inspect", "-f", "{{.State.Running}}", tick)); s != "true" {
		t.Fatalf("after checkpoint --leave-running the container is running=%s, want true", s)
	}
	checkELFDir(t, dirs[0])
	n = checkContinues(t, exec(tick), tok, n)

	// The second checkpoint goes into the same directory, which holds the first one.
	tarball := filepath.Join(env.Dir, "podman-checkpoint-elf.tar")
	run("container", "checkpoint", "--export", tarball, tick)
	exported := filepath.Join(h.NewDir(t), "exported")
	if extractExport(t, tarball, "checkpoint/", exported) == 0 {
		t.Fatalf("the exported tarball has no checkpoint/ files")
	}
	checkELFDir(t, exported)
	run("rm", tick)
	run("container", "restore", "--import", tarball, "--name", tick2)
	checkContinues(t, exec(tick2), tok, n)
	checkTmpFiles(t, exec(tick2))
}

// extractExport unpacks the files under prefix of a Podman checkpoint export into dir, streaming:
// the export is zstd-compressed by default (decompressed by the zstd tool, package zstd), or gzip,
// or plain, and holds Podman's rootfs-diff.tar, which can be large (runsc's sparse overlay
// filestore in the container's host rootfs directory is part of Podman's diff).
func extractExport(t *testing.T, path, prefix, dir string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var magic [4]byte
	if _, err := io.ReadFull(f, magic[:]); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	switch {
	case bytes.Equal(magic[:], []byte{0x28, 0xb5, 0x2f, 0xfd}):
		cmd := exec.Command("zstd", "-dc")
		cmd.Stdin = f
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatalf("zstd: %v", err)
		}
		n := untarPrefix(t, out, prefix, dir)
		io.Copy(io.Discard, out)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("zstd -dc %s: %v", path, err)
		}
		return n
	case magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		return untarPrefix(t, zr, prefix, dir)
	}
	return untarPrefix(t, f, prefix, dir)
}
