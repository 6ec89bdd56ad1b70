package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// guestBuild is one guest program, built at most once per test process.
type guestBuild struct {
	once sync.Once
	path string
	err  error
}

// BuildC compiles test/guests/<name>.c into a static binary (gcc -static -O1 -g -Wall -Werror,
// with include/ on the include path for ckpt.h) and returns its path. Extra cflags are appended
// (e.g. "-pthread"). A build is shared by all tests asking for the same name and flags.
func (h *H) BuildC(t *testing.T, name string, cflags ...string) string {
	t.Helper()
	src := filepath.Join(h.Root, "test", "guests", name+".c")
	key := "c:" + name + ":" + strings.Join(cflags, " ")
	return h.build(t, key, name, func(out string) error {
		args := []string{"-static", "-O1", "-g", "-Wall", "-Werror", "-I", filepath.Join(h.Root, "include"), "-o", out, src}
		args = append(args, cflags...)
		cmd := exec.Command("gcc", args...)
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("gcc %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return nil
	})
}

// BuildGo compiles the Go program in test/guests/<name>/ (package main) into a static binary
// (CGO_ENABLED=0) and returns its path.
func (h *H) BuildGo(t *testing.T, name string) string {
	t.Helper()
	return h.build(t, "go:"+name, name, func(out string) error {
		return goBuild(h.Root, out, "./test/guests/"+name)
	})
}

func (h *H) build(t *testing.T, key, name string, do func(out string) error) string {
	t.Helper()
	h.mu.Lock()
	g, ok := h.guests[key]
	if !ok {
		g = &guestBuild{}
		h.guests[key] = g
	}
	n := len(h.guests)
	h.mu.Unlock()
	g.once.Do(func() {
		dir := filepath.Join(h.Dir, "guests")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			g.err = err
			return
		}
		out := filepath.Join(dir, fmt.Sprintf("%s-%d", name, n))
		if g.err = do(out); g.err == nil {
			g.path = out
		}
	})
	if g.err != nil {
		t.Fatalf("building guest %s: %v", name, g.err)
	}
	return g.path
}
