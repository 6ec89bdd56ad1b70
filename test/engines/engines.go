// Package engines starts real container engines (containerd with ctr, Docker, Podman) for the
// integration tests, each with its own roots, sockets and state under one test directory, with
// runsc-ckpt registered as their runtime through a wrapper script that logs every command line
// the engine runs the runtime with. Nothing outside the test directory is touched except what the
// engines themselves insist on (containerd's shim sockets under /run/containerd/s).
package engines

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// CommandTimeout bounds every engine command the package runs.
const CommandTimeout = 2 * time.Minute

// Env is a directory holding the engines' state and the runtime wrapper.
type Env struct {
	// Dir holds everything: daemon roots, sockets, logs, the image tarball.
	Dir string
	// Bin is the runsc-ckpt binary the wrapper runs.
	Bin string
	// Runtime is the wrapper script engines run as their OCI runtime.
	Runtime string
	// ArgvLog is the file the wrapper appends each command line to (one per line).
	ArgvLog string
	// RunDir is a directory with a short path (Podman refuses a runroot of 50 characters or more).
	RunDir string
}

// NewEnv writes the runtime wrapper into dir and returns the environment. The wrapper logs its
// arguments and execs bin with them, adding only --debug-log (into dir/runsc-logs/, for failure
// reports), which is not part of what it logs.
func NewEnv(t *testing.T, dir, bin string) *Env {
	t.Helper()
	e := &Env{
		Dir:     dir,
		Bin:     bin,
		ArgvLog: filepath.Join(dir, "runtime-argv.log"),
	}
	run, err := os.MkdirTemp("/run", "runsc-ckpt-")
	if err != nil {
		t.Fatal(err)
	}
	e.RunDir = run
	e.Runtime = e.NewRuntime(t, "runsc-ckpt-runtime")
	return e
}

// NewRuntime writes another runtime wrapper called name into e.Dir, which adds flags (global
// runsc-ckpt flags) to every call, and returns its path. Its calls are logged to e.ArgvLog too.
func (e *Env) NewRuntime(t *testing.T, name string, flags ...string) string {
	t.Helper()
	logs := filepath.Join(e.Dir, "runsc-logs") + "/"
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	extra := ""
	for _, f := range flags {
		extra += " '" + f + "'"
	}
	path := filepath.Join(e.Dir, name)
	script := fmt.Sprintf("#!/bin/sh\nprintf '%%s\\n' \"$*\" >> %s\nexec %s --debug --debug-log=%s%s \"$@\"\n", e.ArgvLog, e.Bin, logs, extra)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// RuntimeArgv returns the command lines the engines ran the runtime with so far.
func (e *Env) RuntimeArgv() []string {
	b, err := os.ReadFile(e.ArgvLog)
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// Result is the outcome of a command.
type Result struct {
	Args           []string
	Stdout, Stderr string
	Err            error
}

// String describes r for failure messages.
func (r *Result) String() string {
	return fmt.Sprintf("%s: %v\n--- stdout ---\n%s--- stderr ---\n%s", strings.Join(r.Args, " "), r.Err, r.Stdout, r.Stderr)
}

// Run runs argv with stdin from in (may be nil) and returns what happened, killing it after
// CommandTimeout.
func Run(in []byte, argv ...string) *Result {
	return RunTimeout(CommandTimeout, in, argv...)
}

// RunTimeout is Run with its own time limit.
func RunTimeout(timeout time.Duration, in []byte, argv ...string) *Result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if in != nil {
		cmd.Stdin = bytes.NewReader(in)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return &Result{Args: argv, Stdout: out.String(), Stderr: errb.String(), Err: err}
}

// MustRun runs argv and fails t if it does not succeed; it returns stdout.
func MustRun(t *testing.T, argv ...string) string {
	t.Helper()
	r := Run(nil, argv...)
	if r.Err != nil {
		t.Fatalf("%s", r)
	}
	return r.Stdout
}

// Packages maps each command the engine tests need to the Debian package that has it.
var Packages = map[string]string{
	"containerd": "containerd",
	"ctr":        "containerd",
	"dockerd":    "docker.io",
	"docker":     "docker.io",
	"podman":     "podman",
	"conmon":     "conmon",
	"criu":       "criu",           // Podman refuses to checkpoint without a CRIU it can ask for its version
	"runc":       "runc",           // the containerd shim checks for it
	"busybox":    "busybox-static", // the image's only binary
	"zstd":       "zstd",           // to read Podman's checkpoint exports (zstd by default)
}

// EnsurePackages installs the Debian packages of the commands that are missing (as the Makefile's
// deps target does for the other tests) and skips t, with the reason, only if that fails.
func EnsurePackages(t *testing.T) {
	t.Helper()
	var missing []string
	seen := map[string]bool{}
	for c, p := range Packages {
		if _, err := exec.LookPath(c); err != nil && !seen[p] {
			seen[p] = true
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return
	}
	t.Logf("installing %v", missing)
	install := append([]string{"env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "--no-install-recommends"}, missing...)
	r := Run(nil, install...)
	if r.Err != nil {
		Run(nil, "apt-get", "-o", "DPkg::Lock::Timeout=300", "update")
		r = Run(nil, install...)
	}
	for c := range Packages {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("%s is not installed and its package %s could not be installed:\n%s", c, Packages[c], r)
		}
	}
}
