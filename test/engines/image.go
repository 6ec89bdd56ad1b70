package engines

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The images BuildImage makes: busybox without a command, and the same with a command that waits
// forever (a pod sandbox image for CRI).
const (
	ImageName      = "localhost/runsc-ckpt-busybox:test"
	PauseImageName = "localhost/runsc-ckpt-pause:test"
)

// BuildImage makes a busybox image without a registry: a rootfs of the static busybox (package
// busybox-static) and its applet links, imported into Podman as ImageName and PauseImageName; it
// returns a docker-archive tarball of both that `docker load` and `ctr image import` take.
func (e *Env) BuildImage(t *testing.T) string {
	t.Helper()
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox: %v (package busybox-static)", err)
	}
	if err := checkStatic(busybox); err != nil {
		t.Fatalf("%v (install busybox-static)", err)
	}
	rootfs := filepath.Join(e.Dir, "rootfs")
	for _, d := range []string{"bin", "dev", "proc", "sys", "tmp", "etc", "run"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(busybox)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin", "busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, applet := range strings.Fields(MustRun(t, busybox, "--list")) {
		if applet == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(rootfs, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	tarball, err := exec.Command("tar", "-C", rootfs, "-c", ".").Output()
	if err != nil {
		t.Fatalf("tar of the rootfs: %v", err)
	}
	podman := e.Podman()
	if r := Run(tarball, append(podman, "import", "-", ImageName)...); r.Err != nil {
		t.Fatalf("%s", r)
	}
	// The same rootfs as a pod sandbox ("pause") image for CRI: its command waits forever.
	if r := Run(tarball, append(podman, "import", "--change", `CMD ["/bin/sh","-c","while :; do sleep 3600; done"]`, "-", PauseImageName)...); r.Err != nil {
		t.Fatalf("%s", r)
	}
	archive := filepath.Join(e.Dir, "busybox-image.tar")
	MustRun(t, append(podman, "save", "--format", "docker-archive", "--multi-image-archive", "-o", archive, ImageName, PauseImageName)...)
	return archive
}

// checkStatic fails unless path is an ELF executable without a program interpreter.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked", path)
		}
	}
	return nil
}
