package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Opts configure a sandbox and the runsc-ckpt commands run against it.
type Opts struct {
	// Platform is passed as --platform (default "systrap").
	Platform string
	// Flags are extra global runsc-ckpt flags, placed before the subcommand
	// (e.g. "--ckpt-group=7", "--strace").
	Flags []string
	// Persist makes `do` write through to the host (-force-overlay=false): needed when a file
	// written inside (an image) must be seen outside or by a later sandbox.
	Persist bool
	// Cwd is the working directory of a `do` guest (default: the sandbox's test directory).
	Cwd string
	// Timeout bounds each command (default DefaultTimeout). On timeout the command's process
	// group is killed and the test fails.
	Timeout time.Duration
	// Binary is the runsc-ckpt binary to run (default: the one under test, H.Bin).
	Binary string
}

func (o Opts) platform() string {
	if o.Platform == "" {
		return "systrap"
	}
	return o.Platform
}

func (o Opts) timeout() time.Duration {
	if o.Timeout <= 0 {
		return DefaultTimeout
	}
	return o.Timeout
}

// Sandbox is one runsc-ckpt state root (--root) with its debug logs and test directory. Every
// container started in it is killed and deleted when the test ends; when the test fails, the
// debug logs are printed.
type Sandbox struct {
	h *H
	// Opts are the options the sandbox was made with.
	Opts Opts
	// Dir is the test directory (readable and writable by guests, same path inside and out).
	Dir string
	// Root is the --root state directory.
	Root string
	// LogDir receives the debug logs of every command (--debug-log=LogDir/).
	LogDir string

	seq     atomic.Int64
	adopted []int // sandbox pids that may have been re-parented to the test process
}

// NewSandbox creates a state root, log directory and test directory for t and registers their
// cleanup. Do and Bundle call it; use it directly to run several commands against one root.
func (h *H) NewSandbox(t *testing.T, opts Opts) *Sandbox {
	t.Helper()
	dir := h.NewDir(t)
	s := &Sandbox{h: h, Opts: opts, Dir: dir, Root: filepath.Join(dir, ".root"), LogDir: filepath.Join(dir, ".logs")}
	for _, d := range []string{s.Root, s.LogDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("creating %s: %v", d, err)
		}
	}
	// Cleanups run last-in first-out: tear down first, then print logs (which teardown adds to).
	t.Cleanup(func() {
		if t.Failed() {
			s.dumpLogs(t)
		}
	})
	t.Cleanup(func() { s.teardown(t) })
	return s
}

// bin is the binary s runs.
func (s *Sandbox) bin() string {
	if s.Opts.Binary != "" {
		return s.Opts.Binary
	}
	return s.h.Bin
}

// globalFlags are the flags every command of s gets.
func (s *Sandbox) globalFlags() []string {
	flags := []string{
		"--root=" + s.Root,
		"--debug",
		"--debug-log=" + s.LogDir + "/",
		"--platform=" + s.Opts.platform(),
		"--network=none",
	}
	return append(flags, s.Opts.Flags...)
}

// Result is the outcome of one runsc-ckpt command.
type Result struct {
	// Args is the full command line.
	Args []string
	// ExitCode is the command's exit status; for `do` that is the guest's (128+n if the guest
	// was killed by signal n). -1 if it did not exit normally.
	ExitCode int
	// Stdout and Stderr are the command's (and for `do`, the guest's) output.
	Stdout, Stderr string
	// Duration is the wall time the command took.
	Duration time.Duration
	// Sandbox is the sandbox the command ran in.
	Sandbox *Sandbox
}

// String summarises r for failure messages.
func (r *Result) String() string {
	return fmt.Sprintf("%s\nexit code %d after %v\n--- stdout ---\n%s--- stderr ---\n%s",
		strings.Join(r.Args, " "), r.ExitCode, r.Duration.Round(time.Millisecond), r.Stdout, r.Stderr)
}

// WantExit fails t unless the command exited with code.
func (r *Result) WantExit(t *testing.T, code int) {
	t.Helper()
	if r.ExitCode != code {
		t.Fatalf("want exit code %d, got:\n%s", code, r)
	}
}

// Proc is a runsc-ckpt command running in the background (Sandbox.Background).
type Proc struct {
	s       *Sandbox
	cmd     *exec.Cmd
	res     *Result
	outPath string
	errPath string
	start   time.Time
	done    chan struct{}
	waitErr error
}

// Background starts `runsc-ckpt <global flags> args...` in the background, with stdout and stderr going
// to files (never a terminal or a pipe the sandbox could keep open).
func (s *Sandbox) Background(t *testing.T, args ...string) *Proc {
	t.Helper()
	n := s.seq.Add(1)
	p := &Proc{
		s:       s,
		outPath: filepath.Join(s.LogDir, fmt.Sprintf("cmd%d.stdout", n)),
		errPath: filepath.Join(s.LogDir, fmt.Sprintf("cmd%d.stderr", n)),
		done:    make(chan struct{}),
	}
	// O_APPEND: a sandbox started by the command (run, restore) writes the container's stdio at
	// an offset of its own that starts at 0 (gVisor's imported host file), and would overwrite
	// what the command wrote before it (restore's warnings: TestTreeCheckpointFilesystems
	// failed so); with O_APPEND every write lands at the end.
	stdout, err := createAppend(p.outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	stderr, err := createAppend(p.errPath)
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	full := append(s.globalFlags(), args...)
	p.cmd = exec.Command(s.bin(), full...)
	p.cmd.Dir = s.Dir
	p.cmd.Stdin = nil
	p.cmd.Stdout = stdout
	p.cmd.Stderr = stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.res = &Result{Args: append([]string{s.bin()}, full...), ExitCode: -1, Sandbox: s}
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", strings.Join(p.res.Args, " "), err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

// createAppend creates (or truncates) the file at path, open for writing with O_APPEND.
func createAppend(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o644)
}

// Sandbox returns the sandbox the command runs against.
func (p *Proc) Sandbox() *Sandbox { return p.s }

// Stdout returns what the command (for `do`, the guest) has written to stdout so far.
func (p *Proc) Stdout() string { return readFile(p.outPath) }

// WaitForOutput polls the command's stdout until it contains want, failing t after the
// sandbox's timeout.
func (p *Proc) WaitForOutput(t *testing.T, want string) {
	t.Helper()
	if !pollUntil(p.s.Opts.timeout(), func() bool { return strings.Contains(p.Stdout(), want) }) {
		t.Fatalf("stdout never contained %q; got:\n%s\nstderr:\n%s", want, p.Stdout(), readFile(p.errPath))
	}
}

// Pid returns the process id of the runsc-ckpt command (not of the guest).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the runsc-ckpt command (`do` forwards signals to the guest).
func (p *Proc) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// kill kills the command's process group if it is still running.
func (p *Proc) kill() {
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Wait waits for the command to exit, at most timeout (0: the sandbox's Opts.Timeout); on
// timeout it kills the command and fails t.
func (p *Proc) Wait(t *testing.T, timeout time.Duration) *Result {
	t.Helper()
	if timeout <= 0 {
		timeout = p.s.Opts.timeout()
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	timedOut := false
	select {
	case <-p.done:
	case <-timer.C:
		timedOut = true
		p.kill()
	}
	p.res.Duration = time.Since(p.start)
	p.res.Stdout = readFile(p.outPath)
	p.res.Stderr = readFile(p.errPath)
	var ee *exec.ExitError
	switch {
	case p.waitErr == nil:
		p.res.ExitCode = 0
	case errors.As(p.waitErr, &ee) && ee.Exited():
		p.res.ExitCode = ee.ExitCode()
	}
	if timedOut {
		t.Fatalf("timed out after %v:\n%s", timeout, p.res)
	}
	return p.res
}

// Run runs `runsc-ckpt <global flags> args...` to completion (bounded by Opts.Timeout).
func (s *Sandbox) Run(t *testing.T, args ...string) *Result {
	t.Helper()
	return s.Background(t, args...).Wait(t, 0)
}

// MustRun is Run that fails t unless the command exits 0.
func (s *Sandbox) MustRun(t *testing.T, args ...string) *Result {
	t.Helper()
	r := s.Run(t, args...)
	if r.ExitCode != 0 {
		t.Fatalf("command failed:\n%s", r)
	}
	return r
}

// DoArgs returns the arguments of `do` for guest argv under s's options.
func (s *Sandbox) DoArgs(argv ...string) []string {
	cwd := s.Opts.Cwd
	if cwd == "" {
		cwd = s.Dir
	}
	args := []string{"do", "-cwd=" + cwd}
	if s.Opts.Persist {
		args = append(args, "-force-overlay=false")
	}
	return append(args, argv...)
}

// Do runs argv (a guest binary and its arguments) with `runsc-ckpt do` in a new sandbox and
// returns when it exits. The guest's working directory is the sandbox's Dir unless Opts.Cwd says
// otherwise.
func (h *H) Do(t *testing.T, opts Opts, argv ...string) *Result {
	t.Helper()
	s := h.NewSandbox(t, opts)
	return s.Run(t, s.DoArgs(argv...)...)
}

// StartDo starts argv with `runsc-ckpt do` in a new sandbox in the background.
func (h *H) StartDo(t *testing.T, opts Opts, argv ...string) *Proc {
	t.Helper()
	s := h.NewSandbox(t, opts)
	return s.Background(t, s.DoArgs(argv...)...)
}

// Containers lists the ids of the containers in s's root.
func (s *Sandbox) Containers(t *testing.T) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin(), "--root="+s.Root, "list", "-quiet")
	out, err := cmd.Output()
	if err != nil {
		t.Logf("listing containers in %s: %v", s.Root, err)
		return nil
	}
	return strings.Fields(string(out))
}

// teardown kills and deletes every container left in s's root.
func (s *Sandbox) teardown(t *testing.T) {
	for _, id := range s.Containers(t) {
		for _, args := range [][]string{{"kill", "--all", id, "KILL"}, {"delete", "-force", id}} {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			cmd := exec.CommandContext(ctx, s.bin(), append([]string{"--root=" + s.Root}, args...)...)
			_ = cmd.Run() // kill fails for a stopped container; delete -force is what matters.
			cancel()
		}
	}
	if left := s.Containers(t); len(left) > 0 {
		t.Errorf("containers left in %s after teardown: %v", s.Root, left)
	}
	// Every sandbox's kill channel (runsc-ckpt/kill_fifo.go) goes with it.
	if left, _ := filepath.Glob(filepath.Join(s.Root, "runsc-ckpt-kill_*")); len(left) > 0 {
		t.Errorf("kill channels left in %s after teardown: %v", s.Root, left)
	}
	if left := killStragglers(s.Root, 10*time.Second); len(left) > 0 {
		t.Errorf("processes of %s still alive after SIGKILL: %v", s.Root, left)
	}
	for _, pid := range s.adopted {
		// A sandbox re-parented to the test process (child subreaper) is reaped here; it is dead
		// or dying by now, but a loaded machine can take a while.
		_, _ = reap(pid, 30*time.Second)
	}
	// runsc pins an empty network namespace for the gofer by bind-mounting it at
	// <root>/null-netns and leaves it there; unmount it (possibly stacked) so the directory can
	// be removed.
	for unix.Unmount(filepath.Join(s.Root, "null-netns"), unix.MNT_DETACH) == nil {
	}
}

// DebugLogs returns the sandbox's debug logs (every file of LogDir), one after the other.
func (s *Sandbox) DebugLogs(t *testing.T) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(s.LogDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, f := range files {
		b.WriteString(readFile(f))
	}
	return b.String()
}

// dumpLogs prints the sandbox's logs (the last lines of each file) into the test log.
func (s *Sandbox) dumpLogs(t *testing.T) {
	const maxLines = 400
	files, _ := filepath.Glob(filepath.Join(s.LogDir, "*"))
	for _, f := range files {
		lines := strings.Split(strings.TrimRight(readFile(f), "\n"), "\n")
		cut := ""
		if len(lines) > maxLines {
			cut = fmt.Sprintf(" (last %d of %d lines)", maxLines, len(lines))
			lines = lines[len(lines)-maxLines:]
		}
		t.Logf("===== %s%s =====\n%s", f, cut, strings.Join(lines, "\n"))
	}
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return string(b)
}

// pollUntil calls cond every 20ms until it returns true (then pollUntil returns true) or timeout
// passes (false).
func pollUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
