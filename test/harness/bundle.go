package harness

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"gvisor.dev/gvisor/runsc/specutils"
)

// BundleOpts describe an OCI bundle whose config.json the harness writes.
type BundleOpts struct {
	Opts
	// Args is the guest's argv (required).
	Args []string
	// Env is the guest's environment (default PATH only).
	Env []string
	// Cwd is the guest's working directory (default: the sandbox's Dir, at the same path as on
	// the host).
	Cwd string
	// Annotations are added to the spec (e.g. ckpt.AnnotationFile).
	Annotations map[string]string
	// Mounts are added after the default ones (proc, /dev tmpfs, sysfs).
	Mounts []specs.Mount
	// User is the guest's user (default root, with every capability).
	User specs.User
	// Terminal sets process.terminal: the runtime must then be given --console-socket, on which
	// it sends the master of the pty that is the guest's stdio.
	Terminal bool
}

// Container is one container of an OCI bundle in its own sandbox root.
type Container struct {
	*Sandbox
	// ID is the container id.
	ID string
	// Bundle is the bundle directory (holding config.json).
	Bundle string
	// Spec is the spec written to config.json.
	Spec *specs.Spec

	stdoutPath, stderrPath string
	sandboxPid             int   // pid of the sandbox process (from state after create)
	waiter                 *Proc // `wait` started as soon as the container runs
}

// Bundle writes an OCI bundle for opts, with a unique container id: the host's / is the root file
// system (so guest binaries run from their host paths), under a memory overlay (writes vanish)
// unless opts.Persist is set, in which case writes go to the host, as with `do
// -force-overlay=false`. (A bind mount of the test directory would be neater, but on this kind of
// host the sandbox sees such a mount read-only or not at all; see docs/notes-harness.md.)
// Nothing runs until Create or RunDetached.
func (h *H) Bundle(t *testing.T, opts BundleOpts) *Container {
	t.Helper()
	if len(opts.Args) == 0 {
		t.Fatal("BundleOpts.Args is empty")
	}
	overlay := "--overlay2=root:memory"
	if opts.Persist {
		overlay = "--overlay2=none"
	}
	opts.Opts.Flags = append([]string{overlay}, opts.Opts.Flags...)
	s := h.NewSandbox(t, opts.Opts)
	c := &Container{
		Sandbox:    s,
		ID:         fmt.Sprintf("rc-test-%d-%d", os.Getpid(), h.seq.Add(1)),
		Bundle:     filepath.Join(s.Dir, ".bundle"),
		stdoutPath: filepath.Join(s.LogDir, "guest.stdout"),
		stderrPath: filepath.Join(s.LogDir, "guest.stderr"),
	}
	cwd := opts.Cwd
	if cwd == "" {
		cwd = s.Dir
	}
	env := opts.Env
	if env == nil {
		env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	}
	c.Spec = &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			User:         opts.User,
			Terminal:     opts.Terminal,
			Args:         opts.Args,
			Env:          env,
			Cwd:          cwd,
			Capabilities: specutils.AllCapabilities(),
		},
		Root:     &specs.Root{Path: "/"},
		Hostname: "runsc-ckpt-test",
		Mounts: append([]specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs"},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		}, opts.Mounts...),
		Annotations: opts.Annotations,
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
		},
	}
	if err := os.MkdirAll(c.Bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(c.Spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.Bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

// Create runs `create` and fails t if it does not succeed. The guest's stdout and stderr go to
// files read by GuestStdout and GuestStderr.
func (c *Container) Create(t *testing.T) {
	t.Helper()
	c.mustRunWithGuestIO(t, "create", "-bundle="+c.Bundle, "-pid-file="+c.pidFile(), c.ID)
	c.readSandboxPid(t)
}

// RestoreDetached runs `restore args... --detach ID` (args: --image-path, --bundle, ...) and fails
// t if it does not succeed. The restored container's stdio is the restore command's, as with
// runc: its stdout and stderr go to files read by GuestStdout and GuestStderr.
func (c *Container) RestoreDetached(t *testing.T, args ...string) {
	t.Helper()
	c.mustRunWithGuestIO(t, append(append([]string{"restore"}, args...), "--detach", c.ID)...)
}

// RunDetached runs `run -detach` (create + start in one go) and fails t if it does not succeed.
func (c *Container) RunDetached(t *testing.T) {
	t.Helper()
	c.mustRunWithGuestIO(t, "run", "-detach", "-bundle="+c.Bundle, "-pid-file="+c.pidFile(), c.ID)
	c.startWaiter(t)
	c.readSandboxPid(t)
}

// pidFile is where create and run write the sandbox's pid: beside the logs, so the bundle
// directory holds only what the test put there.
func (c *Container) pidFile() string { return filepath.Join(c.LogDir, "sandbox.pid") }

// readSandboxPid records the sandbox pid from the pid file that create or run wrote before the
// guest started. (`state` is no substitute: a guest that has already exited reports pid 0, and
// then Wait could neither reap the sandbox nor recover the exit status.)
func (c *Container) readSandboxPid(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(c.pidFile())
	if err != nil {
		t.Fatalf("reading the sandbox pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		t.Fatalf("bad sandbox pid file %s: %q", c.pidFile(), b)
	}
	c.sandboxPid = pid
	c.adopted = append(c.adopted, pid)
}

// startWaiter starts `wait` in the background. runsc can only report the root container's exit
// status through a wait that is connected while the guest runs (afterwards the sandbox is gone),
// so Start and RunDetached begin waiting at once and Wait collects the result.
func (c *Container) startWaiter(t *testing.T) {
	t.Helper()
	c.waiter = c.Background(t, "wait", c.ID)
}

// mustRunWithGuestIO runs a command whose stdio the guest inherits, with stdio on the guest files.
func (c *Container) mustRunWithGuestIO(t *testing.T, args ...string) {
	t.Helper()
	p := c.Background(t, args...)
	r := p.Wait(t, 0)
	if r.ExitCode != 0 {
		t.Fatalf("%s failed:\n%s", args[0], r)
	}
	// The guest inherited the command's stdout/stderr files; remember them.
	c.stdoutPath, c.stderrPath = p.outPath, p.errPath
}

// Start runs `start`.
func (c *Container) Start(t *testing.T) {
	t.Helper()
	c.MustRun(t, "start", c.ID)
	c.startWaiter(t)
}

// Wait returns the guest's exit status (128+n for a death by signal n), as reported by `wait`.
// If the guest exited before `wait` could connect, runsc cannot tell; then the status comes from
// reaping the sandbox process, which the test process adopted as child subreaper (Main).
func (c *Container) Wait(t *testing.T) int {
	t.Helper()
	if c.waiter == nil {
		c.startWaiter(t)
	}
	r := c.waiter.Wait(t, 0)
	if r.ExitCode == 0 {
		var ws struct {
			ExitStatus int `json:"exitStatus"`
		}
		if err := json.Unmarshal([]byte(r.Stdout), &ws); err != nil {
			t.Fatalf("decoding wait output: %v\n%s", err, r)
		}
		// The sandbox exits right after its root container. Reap it, or runsc would take the
		// zombie for a running sandbox (state "running", delete refused).
		if c.sandboxPid > 0 {
			if _, err := reap(c.sandboxPid, c.Opts.timeout()); err != nil && !errors.Is(err, syscall.ECHILD) {
				t.Logf("reaping sandbox %d: %v", c.sandboxPid, err)
			}
		}
		return ws.ExitStatus
	}
	if !strings.Contains(r.Stderr, "exit status is unavailable") || c.sandboxPid <= 0 {
		t.Fatalf("wait failed:\n%s", r)
	}
	code, err := reap(c.sandboxPid, c.Opts.timeout())
	if err != nil {
		t.Fatalf("wait failed and reaping sandbox pid %d failed too (%v):\n%s", c.sandboxPid, err, r)
	}
	return code
}

// Kill runs `kill <id> <signal>` (signal as runsc accepts it: "KILL", "TERM", "62"...).
func (c *Container) Kill(t *testing.T, signal string) {
	t.Helper()
	c.MustRun(t, "kill", c.ID, signal)
}

// Delete runs `delete` (with -force if force).
func (c *Container) Delete(t *testing.T, force bool) {
	t.Helper()
	args := []string{"delete"}
	if force {
		args = append(args, "-force")
	}
	c.MustRun(t, append(args, c.ID)...)
}

// State is the part of `runsc state` output the tests use.
type State struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Pid    int    `json:"pid"`
}

// State runs `state` and decodes it.
func (c *Container) State(t *testing.T) State {
	t.Helper()
	r := c.MustRun(t, "state", c.ID)
	var st State
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		t.Fatalf("decoding state: %v\n%s", err, r)
	}
	return st
}

// PS runs `ps` and returns its table.
func (c *Container) PS(t *testing.T) string {
	t.Helper()
	return c.MustRun(t, "ps", c.ID).Stdout
}

// GuestStdout returns what the guest wrote to stdout so far.
func (c *Container) GuestStdout() string { return readFile(c.stdoutPath) }

// GuestStderr returns what the guest wrote to stderr so far.
func (c *Container) GuestStderr() string { return readFile(c.stderrPath) }

// Exec runs `exec` of argv in the running container and returns its result.
func (c *Container) Exec(t *testing.T, argv ...string) *Result {
	t.Helper()
	return c.Run(t, append([]string{"exec", c.ID}, argv...)...)
}

// ExecEndingContainer runs `exec` of argv, a command that ends the container itself (e.g.
// `checkpt -c -t 0 -k`, which kills the container's init once checkpt has exited 0), and fails t
// unless it exited 0, or its host command lost the sandbox before it could collect the exit status.
// That race is upstream's `runsc exec`: it waits for the status over the sandbox's control socket,
// and the sandbox may be gone by then ("connection refused"). The caller checks what the command
// left (the checkpoint directory) to tell success.
func (c *Container) ExecEndingContainer(t *testing.T, argv ...string) {
	t.Helper()
	r := c.Exec(t, argv...)
	if r.ExitCode == 0 {
		return
	}
	lost := strings.Contains(r.Stderr, "connection refused") || strings.Contains(r.Stderr, "sandbox is not running") ||
		strings.Contains(r.Stderr, "no such file or directory")
	if r.ExitCode == 128 && lost {
		t.Logf("exec lost the sandbox its command ended, as upstream's exec may:\n%s", r)
		return
	}
	t.Fatalf("want exit code 0 (or the sandbox gone), got:\n%s", r)
}

// WaitForOutput polls the guest's stdout until it contains want, failing t after the sandbox's
// timeout.
func (c *Container) WaitForOutput(t *testing.T, want string) {
	t.Helper()
	if !pollUntil(c.Opts.timeout(), func() bool { return strings.Contains(c.GuestStdout(), want) }) {
		t.Fatalf("guest stdout never contained %q; got:\n%s\nstderr:\n%s", want, c.GuestStdout(), c.GuestStderr())
	}
}
