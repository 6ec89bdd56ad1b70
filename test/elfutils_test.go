package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// buildID returns the GNU build-id of an ELF file as readelf prints it.
func buildID(t *testing.T, path string) string {
	t.Helper()
	m := regexp.MustCompile(`Build ID: ([0-9a-f]+)`).FindStringSubmatch(runTool(t, "readelf", "-n", path))
	if m == nil {
		t.Fatalf("%s has no build-id note", path)
	}
	return m[1]
}

// TestElfutilsFrozenImage: elfutils reads a checkpoint image of a static C program as it reads a
// Linux core, because the image keeps the first page of every ELF file mapping stored by
// reference (format 1.3): eu-unstrip lists the program with its build-id, and eu-stack unwinds
// the frozen thread. The same image thaws (TestThaw* cover the thaw of such images).
func TestElfutilsFrozenImage(t *testing.T) {
	guest := h.BuildC(t, "freeze_basic")
	id := buildID(t, guest)
	h.ForEachPlatform(t, func(t *testing.T, platform string) {
		s := h.NewSandbox(t, harness.Opts{Platform: platform, Persist: true})
		image := filepath.Join(s.Dir, "basic.img")
		mapfile := filepath.Join(s.Dir, "mapped.txt")
		if err := os.WriteFile(mapfile, []byte("Mapped file contents\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := s.Run(t, s.DoArgs(guest, image, mapfile, filepath.Join(s.Dir, "log.txt"))...)
		r.WantExit(t, 0)

		mods := runTool(t, "eu-unstrip", "-n", "--core", image)
		if !regexp.MustCompile(`(?m)^0x400000\+0x[0-9a-f]+ ` + id + `@0x[0-9a-f]+ .* ` + regexp.QuoteMeta(guest) + `$`).MatchString(mods) {
			t.Errorf("eu-unstrip -n --core does not list %s with build-id %s:\n%s", guest, id, mods)
		}
		stack := euStack(t, image, guest)
		for _, want := range []string{"do_freeze", "main"} {
			if !strings.Contains(stack, want) {
				t.Errorf("eu-stack --core output lacks %q:\n%s", want, stack)
			}
		}
		p := decodeImage(t, image)
		headers := 0
		for i := range p.Mappings {
			if m := &p.Mappings[i]; m.HeaderPage && m.File != nil && m.File.Path == guest {
				headers++
			}
		}
		if headers != 1 {
			t.Errorf("the image keeps %d header pages of %s, want 1 (its mapping at offset 0)", headers, guest)
		}
	})
}

// TestElfutilsCore: the core of a crashed program is read the same way.
func TestElfutilsCore(t *testing.T) {
	guest := h.BuildC(t, "core_crash", "-pthread")
	id := buildID(t, guest)
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		_, dir := runCoreGuest(t, p, nil, "segv")
		core := filepath.Join(dir, "core")
		if mods := runTool(t, "eu-unstrip", "-n", "--core", core); !strings.Contains(mods, id) {
			t.Errorf("eu-unstrip -n --core lacks the build-id %s:\n%s", id, mods)
		}
		stack := euStack(t, core, guest)
		if !regexp.MustCompile(`(?s)TID \d+:\s*#0 +0x[0-9a-f]+ crash_here`).MatchString(stack) || !strings.Contains(stack, "idle_thread") {
			t.Errorf("eu-stack --core does not show crash_here on top and the idle thread:\n%s", stack)
		}
	})
}

// euStack runs eu-stack on a core or image and returns its output. Its exit status is not checked:
// eu-stack exits 1 when it cannot unwind past a thread's outermost frame (clone3, _start without
// CFI), as it does on Linux's own cores; the output is what the tests look at.
func euStack(t *testing.T, core, prog string) string {
	t.Helper()
	out, err := exec.Command("eu-stack", "--core", core, "-e", prog).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "TID ") {
		t.Fatalf("eu-stack --core %s -e %s: %v\n%s", core, prog, err, out)
	}
	return string(out)
}
