// Package harness runs guest programs in real runsc-ckpt sandboxes for the integration tests in
// test/. It builds the runsc-ckpt binary once per test process, compiles guest programs from
// test/guests (static C and static Go), runs them with `runsc-ckpt do` or as an OCI bundle
// (create → start → wait → delete), gives every sandbox its own --root and debug-log directory,
// prints the sandbox logs when a test fails and tears every sandbox down at the end of its test.
//
// Nothing lives under /tmp: runsc mounts a tmpfs over /tmp inside the sandbox (and a runsc binary
// under /tmp cannot re-execute itself), so scratch space is under /var/tmp (RUNSC_CKPT_TEST_DIR).
//
// Typical use (see test/README.md):
//
//	var h *harness.H
//
//	func TestMain(m *testing.M) { os.Exit(harness.Main(m, &h)) }
//
//	func TestHello(t *testing.T) {
//		guest := h.BuildC(t, "hello")
//		h.ForEachPlatform(t, func(t *testing.T, p string) {
//			r := h.Do(t, harness.Opts{Platform: p}, guest, "7")
//			r.WantExit(t, 7)
//		})
//	}
package harness

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Environment variables that configure the harness.
const (
	// EnvPlatforms is a comma-separated list of platforms to run on (default "systrap,ptrace").
	EnvPlatforms = "RUNSC_CKPT_PLATFORMS"
	// EnvBinary names a prebuilt runsc-ckpt to test instead of building one.
	EnvBinary = "RUNSC_CKPT_BIN"
	// EnvTestDir is the parent of the scratch directory (default /var/tmp). Not under /tmp.
	EnvTestDir = "RUNSC_CKPT_TEST_DIR"
	// EnvKeep keeps the scratch directory (binaries, logs, images) when set to 1.
	EnvKeep = "RUNSC_CKPT_KEEP"
)

var platformsFlag = flag.String("platforms", "", "comma-separated platforms to test on (default $"+EnvPlatforms+" or systrap,ptrace)")

// DefaultTimeout bounds every runsc-ckpt command the harness runs unless Opts.Timeout says otherwise.
const DefaultTimeout = 90 * time.Second

// H is the harness shared by all tests of a test binary. Its methods are safe for concurrent use.
type H struct {
	// Root is the repository root (the directory holding go.mod).
	Root string
	// Bin is the runsc-ckpt binary under test.
	Bin string
	// Dir is this test process's scratch directory; every test gets a subdirectory (NewDir).
	Dir string
	// Platforms are the platforms ForEachPlatform runs on.
	Platforms []string

	seq atomic.Int64
	mu  sync.Mutex
	// +checklocks:mu
	guests map[string]*guestBuild // built guest programs by source name
}

// Main builds the harness, stores it in *hp, runs the tests and cleans up; it returns the exit
// code for os.Exit. Use it from TestMain.
func Main(m *testing.M, hp **H) int {
	flag.Parse()
	if err := becomeSubreaper(); err != nil {
		fmt.Fprintf(os.Stderr, "harness: %v\n", err)
		return 2
	}
	h, err := setUp()
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: %v\n", err)
		return 2
	}
	*hp = h
	code := m.Run()
	if code != 0 || os.Getenv(EnvKeep) == "1" {
		fmt.Fprintf(os.Stderr, "harness: kept scratch directory %s\n", h.Dir)
	} else if err := os.RemoveAll(h.Dir); err != nil {
		fmt.Fprintf(os.Stderr, "harness: removing %s: %v\n", h.Dir, err)
	}
	return code
}

func setUp() (*H, error) {
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("the integration tests must run as root: runsc creates namespaces and chroots")
	}
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	parent := os.Getenv(EnvTestDir)
	if parent == "" {
		parent = "/var/tmp"
	}
	if strings.HasPrefix(filepath.Clean(parent)+"/", "/tmp/") {
		return nil, fmt.Errorf("%s=%s: the scratch directory must not be under /tmp (runsc mounts a tmpfs there)", EnvTestDir, parent)
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(parent, "runsc-ckpt-test-")
	if err != nil {
		return nil, err
	}
	// The sandbox runs the guest as root but through a gofer; keep the tree traversable.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	h := &H{Root: root, Dir: dir, Platforms: platforms(), guests: map[string]*guestBuild{}}
	if bin := os.Getenv(EnvBinary); bin != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			return nil, err
		}
		h.Bin = abs
	} else {
		h.Bin = filepath.Join(dir, "bin", "runsc-ckpt")
		start := time.Now()
		if err := goBuild(root, h.Bin, "./runsc-ckpt"); err != nil {
			return nil, fmt.Errorf("building runsc-ckpt: %w", err)
		}
		fmt.Fprintf(os.Stderr, "harness: built %s in %v\n", h.Bin, time.Since(start).Round(time.Millisecond))
	}
	if strings.HasPrefix(h.Bin, "/tmp/") {
		return nil, fmt.Errorf("runsc-ckpt binary %s is under /tmp: runsc cannot run from there", h.Bin)
	}
	return h, nil
}

// platforms returns the platform list from -platforms, $RUNSC_CKPT_PLATFORMS or the default.
func platforms() []string {
	s := *platformsFlag
	if s == "" {
		s = os.Getenv(EnvPlatforms)
	}
	if s == "" {
		s = "systrap,ptrace"
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// repoRoot walks up from the working directory (go test runs in the package directory) to go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if d == filepath.Dir(d) {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
	}
}

// goBuild builds a static (CGO_ENABLED=0) Go binary of pkg (relative to root) into out.
func goBuild(root, out, pkg string) error {
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// ForEachPlatform runs f as a subtest named after each platform in h.Platforms.
func (h *H) ForEachPlatform(t *testing.T, f func(t *testing.T, platform string)) {
	t.Helper()
	for _, p := range h.Platforms {
		t.Run(p, func(t *testing.T) { f(t, p) })
	}
}

// NewDir returns a new empty directory for t under h.Dir, readable by the sandbox. It is removed
// with h.Dir when the tests pass, and kept when they fail.
func (h *H) NewDir(t *testing.T) string {
	t.Helper()
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	if len(name) > 60 {
		name = name[:60]
	}
	dir := filepath.Join(h.Dir, fmt.Sprintf("%s-%d", name, h.seq.Add(1)))
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatalf("creating test directory: %v", err)
	}
	// 0777: a guest that drops to an unprivileged uid can still write there.
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatalf("chmod test directory: %v", err)
	}
	// Registered before any sandbox of t, so it runs after their teardown (cleanups run last
	// in, first out).
	t.Cleanup(func() { h.removeDir(t, dir) })
	return dir
}

// removeDir removes the directory of a test that passed: a failing run keeps only the failing
// tests' directories (images, logs) under the scratch directory, whose path is printed; a
// failing test's directory is named in its log. A directory something is still mounted under is
// kept (removing it would walk into the mount).
func (h *H) removeDir(t *testing.T, dir string) {
	if t.Failed() {
		t.Logf("test directory kept: %s", dir)
		return
	}
	if os.Getenv(EnvKeep) == "1" {
		return
	}
	if m := mountsUnder(dir); len(m) > 0 {
		t.Logf("test directory kept, still mounted under it: %s", strings.Join(m, ", "))
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Logf("removing test directory: %v", err)
	}
}

// mountsUnder returns the mount points at or below dir in this mount namespace.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return []string{"(cannot read /proc/self/mountinfo: " + err.Error() + ")"}
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		// Field 5 is the mount point, with space, tab, newline and backslash octal-escaped.
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		if mp := f[4]; mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out
}
