package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/sentry/control"
	"gvisor.dev/gvisor/runsc/config"
	"gvisor.dev/gvisor/runsc/container"
	"gvisor.dev/gvisor/runsc/flag"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/sentry/ckpt"
)

// An ELF restore that continues the tree's CLOCK_MONOTONIC (the template route of
// docs/upstream-gaps.md, "CLOCK_MONOTONIC of a restored container"). A new sandbox's clock starts
// near 0, and gVisor has no call that moves it; but upstream's own restore sets it, from the
// Timekeeper's saved readings, before anything runs. So the sandbox is made by a restore:
//
//  1. run the derived bundle detached with the held restore init (treefmt.HeldRestoreInit) and
//     /dev/null stdio (a terminal container restored with --console-socket: a pty of its own,
//     tree_restore_console.go), until it names itself restore-held (SIGUSR1 is blocked; it wrote
//     nothing);
//  2. checkpoint that template sandbox in gVisor's format into a directory under runsc's root;
//  3. rewrite the state file's saved clock to the manifest's (ckpt.RewriteStateFileClock): the
//     restored clock is then the freeze's CLOCK_MONOTONIC plus the realtime since the freeze, and
//     the boot time (/proc/uptime, btime) the checkpointed sandbox's when the manifest has it;
//  4. destroy the template, restore the checkpoint as the container with the caller's stdio,
//     --detach, --pid-file and --console-socket (the command the plain ELF restore runs as `run`);
//  5. send the init SIGUSR1: it goes on as the restore init and thaws the tree.

// Restore clock modes.
const (
	// clockContinue continues the tree's CLOCK_MONOTONIC when the manifest recorded it.
	clockContinue = "continue"
	// clockReset restores in a new sandbox whose clock starts near 0 (the plain ELF restore).
	clockReset = "reset"
	// restoreClockAnnotation selects the mode for a bundle, overridden by the flags.
	restoreClockAnnotation = "dev.runsc-ckpt.restore-clock"
)

// ckptRestoreClockFlag is the global --ckpt-restore-clock (registerRestoreClockFlag).
var ckptRestoreClockFlag string

// registerRestoreClockFlag registers the global flag --ckpt-restore-clock on fs.
func registerRestoreClockFlag(fs *flag.FlagSet) {
	fs.StringVar(&ckptRestoreClockFlag, "ckpt-restore-clock", "", "CLOCK_MONOTONIC and boot time (/proc/uptime, btime) of a container restored from an ELF checkpoint: continue (from the checkpoint's, about +0.4-0.6 s per restore) or reset (the new sandbox's: the clock and uptime near 0); default: the bundle's annotation "+restoreClockAnnotation+", else continue")
}

// parseRestoreClock checks a --restore-clock / --ckpt-restore-clock / annotation value.
func parseRestoreClock(s string) (string, error) {
	switch s {
	case clockContinue, clockReset:
		return s, nil
	}
	return "", fmt.Errorf("restore clock %q: want %q or %q", s, clockContinue, clockReset)
}

// chooseRestoreClock decides the clock mode of an ELF restore: the command's --restore-clock if
// given, else the global --ckpt-restore-clock if given, else the bundle's annotation, else
// continue.
func chooseRestoreClock(cmdFlag, globalFlag string, annotations map[string]string) (string, error) {
	for _, v := range []string{cmdFlag, globalFlag} {
		if v != "" {
			return parseRestoreClock(v)
		}
	}
	if v, ok := annotations[restoreClockAnnotation]; ok {
		m, err := parseRestoreClock(v)
		if err != nil {
			return "", fmt.Errorf("annotation %s: %w", restoreClockAnnotation, err)
		}
		return m, nil
	}
	return clockContinue, nil
}

// clockRestore runs steps 1-5 above for container a.id from the derived bundle (written with the
// held init) and returns the restore command's exit channel, as elfRestore's own run. On an error
// it has removed what it created; the caller deletes the container.
func clockRestore(conf *config.Config, a elfRestoreArgs, derived string, m *treefmt.Manifest, globals []string) (<-chan error, func(), error) {
	devNull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, err
	}
	defer devNull.Close()

	// 1. The template. A terminal container's gets a pty of its own, which upstream's restore
	// replaces by the one it sends to --console-socket (tree_restore_console.go).
	tmpl := exec.Command(a.self, append(append([]string{}, globals...), "run", "--bundle", derived, "--detach", a.id)...)
	tmpl.Stdin, tmpl.Stdout = devNull, devNull
	tmpl.Stderr = os.Stderr
	if a.terminal && a.consoleSocket != "" {
		master, replica, err := templateTerminal()
		if err != nil {
			return nil, nil, err
		}
		defer master.Close()
		defer replica.Close()
		tmpl.Stdin = replica
	}
	if err := tmpl.Run(); err != nil {
		return nil, nil, fmt.Errorf("starting the template sandbox: %w", err)
	}
	if err := waitInitName(conf, a.id, nil, func(name string) bool { return name == treefmt.HeldInitName }); err != nil {
		return nil, nil, fmt.Errorf("the template sandbox's init: %w", err)
	}

	// 2. Its checkpoint, in a directory deleted once the restore has loaded it.
	dir, err := os.MkdirTemp(conf.RootDir, derivedBundlePrefix+a.id+"_clock_")
	if err != nil {
		return nil, nil, fmt.Errorf("creating the template's checkpoint directory: %w", err)
	}
	cleanup := func() { os.RemoveAll(dir) }
	ck := exec.Command(a.self, append(append([]string{}, globals...), "checkpoint", "--format=gvisor", "--image-path", dir, a.id)...)
	ck.Stdin, ck.Stdout, ck.Stderr = devNull, devNull, os.Stderr
	if err := ck.Run(); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("checkpointing the template sandbox: %w", err)
	}

	// 3. The clock.
	if err := rewriteClock(filepath.Join(dir, "checkpoint.img"), m.Clock); err != nil {
		cleanup()
		return nil, nil, err
	}

	// 4. The template goes (in process: `delete` would also remove the derived bundle), the
	// restore comes.
	if c, err := container.Load(conf.RootDir, container.FullID{ContainerID: a.id}, container.LoadOpts{SkipCheck: true}); err == nil {
		if err := c.Destroy(); err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("removing the template sandbox: %w", err)
		}
	}
	args := append(append([]string{}, globals...), "restore", "--image-path", dir, "--bundle", derived)
	args = append(append(args, a.createFlags()...), a.id)
	cmd := exec.Command(a.self, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("restoring the template sandbox: %w", err)
	}
	exited := make(chan error, 1)
	relay := make(chan error, 1)
	go func() { err := cmd.Wait(); exited <- err; relay <- err }()

	// 5. The release, once the restored init holds again.
	if err := waitInitName(conf, a.id, exited, func(name string) bool { return name == treefmt.HeldInitName }); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("the restored template's init: %w", err)
	}
	c, err := container.Load(conf.RootDir, container.FullID{ContainerID: a.id}, container.LoadOpts{})
	if err == nil {
		err = c.SignalContainer(unix.SIGUSR1, false)
	}
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("releasing the restored init: %w", err)
	}
	// waitRestored must not take the held name for the tree's: wait until the init has left it.
	// A sandbox that stops or a restore command that fails meanwhile is a failed thaw, which
	// waitRestored reports as the plain restore's (relay still has the command's result).
	if err := waitInitName(conf, a.id, exited, func(name string) bool { return name != treefmt.HeldInitName }); errors.Is(err, errWaitTimeout) {
		cleanup()
		return nil, nil, fmt.Errorf("the released init: %w", err)
	}
	return relay, cleanup, nil
}

// destroyContainer removes container id in process (not by `delete`, which also removes the
// derived bundles), ignoring errors.
func destroyContainer(conf *config.Config, id string) {
	if c, err := container.Load(conf.RootDir, container.FullID{ContainerID: id}, container.LoadOpts{SkipCheck: true}); err == nil {
		_ = c.Destroy()
	}
}

// manifestClock returns the rewrite of a template's saved clock to the manifest's clock: its
// CLOCK_MONOTONIC and CLOCK_REALTIME at the freeze, and its boot time when the manifest has one
// that is not after the freeze (else, as in manifests of older builds, the template's stays).
func manifestClock(clock *treefmt.Clock) func(treefmt.Clock) treefmt.Clock {
	return func(c treefmt.Clock) treefmt.Clock {
		c.MonotonicNS, c.RealtimeNS = clock.MonotonicNS, clock.RealtimeNS
		if b := clock.BootRealtimeNS; b > 0 && b <= clock.RealtimeNS {
			c.BootRealtimeNS = b
		}
		return c
	}
}

// rewriteClock sets the saved clock of the gvisor-format state file path to clock's readings, in
// place (through a temporary file beside it).
func rewriteClock(path string, clock *treefmt.Clock) error {
	in, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("the template's state file: %w", err)
	}
	defer in.Close()
	tmp := path + ".clock"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("the template's state file: %w", err)
	}
	// Only an io.Writer: the state file writer closes a WriteCloser itself.
	err = ckpt.RewriteStateFileClock(struct{ io.Writer }{out}, in, manifestClock(clock))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("setting the clock in the template's state file: %w", err)
	}
	return nil
}

// waitInitName's errors when the sandbox stopped or the name did not come.
var (
	errSandboxStopped = errors.New("the sandbox stopped")
	errWaitTimeout    = fmt.Errorf("timed out after %v", restoreTimeout)
)

// waitInitName polls container id until its pid 1's name satisfies ok; it fails when the
// container stops, exited (if not nil) delivers an error, or restoreTimeout passes. Once no
// command is left to deliver (exited nil or drained), a sandbox whose control server keeps
// refusing counts as stopped (refusals, tree_restore_answer.go). Without that, a restore whose
// init refused the tree right after its release polled a dead sandbox for restoreTimeout
// (TestTreeRestoreRejects/group_without_leader, 2026-12-04).
func waitInitName(conf *config.Config, id string, exited <-chan error, ok func(string) bool) error {
	var refused refusals
	for deadline := time.Now().Add(restoreTimeout); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		select {
		case err := <-exited:
			if err != nil {
				return err
			}
			exited = nil // A detached restore returns once the sandbox runs.
		default:
		}
		c, running, err := loadRunning(conf, id)
		if err != nil {
			continue
		}
		if !running {
			return errSandboxStopped
		}
		procs, err := c.Processes()
		if refused.stopped(err, exited == nil, time.Now()) {
			return fmt.Errorf("%w: its control server does not answer: %v", errSandboxStopped, err)
		}
		if err != nil {
			continue
		}
		if name, found := initName(procs); found && ok(name) {
			return nil
		}
	}
	return errWaitTimeout
}

// initName returns pid 1's name in procs.
func initName(procs []*control.Process) (string, bool) {
	for _, p := range procs {
		if p.PID == 1 {
			return p.Cmd, true
		}
	}
	return "", false
}
