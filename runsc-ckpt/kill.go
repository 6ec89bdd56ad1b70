package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/google/subcommands"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/log"
	"gvisor.dev/gvisor/pkg/sentry/control"
	"gvisor.dev/gvisor/pkg/sentry/kernel/auth"
	"gvisor.dev/gvisor/runsc/cmd"
	"gvisor.dev/gvisor/runsc/cmd/util"
	"gvisor.dev/gvisor/runsc/config"
	"gvisor.dev/gvisor/runsc/container"
	"gvisor.dev/gvisor/runsc/flag"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/sentry/ckpt"
)

// How a checkpoint signal gets from the host into the sandbox
//
// Upstream's `runsc kill` asks the sandbox's control server to signal a process, and the sentry
// then queues the signal directly (Loader.signal → Kernel.SendExternalSignalThreadGroup): the
// syscall table, where checkpoint signals are recognised, is never involved, so SIGCKPT would
// simply terminate the process (gVisor's default action for signals 32-64). The control server
// cannot be given a new RPC without forking gVisor. So for a checkpoint signal kill writes the
// request to the sandbox's kill channel, two FIFOs in the state directory that the sentry reads
// (kill_fifo.go), and the sentry carries out the checkpoint default action as for a signal from a
// guest. A sandbox without a channel (started by an older runsc-ckpt) gets a tiny helper run
// inside the container that calls kill(2) there, where the sentry's wrapped kill(2) does the rest:
// treefmt.SignalHelper, passed to the sandbox as a host file descriptor through exec's
// FilePayload (the mechanism behind `runsc exec --exec-fd`), so nothing is mounted into the
// container and its root filesystem is never touched.
// docs/notes-sigckpt.md discusses the alternatives.

// killCommand is upstream's kill with a route for checkpoint signals. Every other signal, and every
// error case of the command line, is left to upstream's kill unchanged.
type killCommand struct {
	cmd.Kill
}

// Usage implements subcommands.Command.Usage.
func (*killCommand) Usage() string {
	return `kill [--all | --pid PID | --pgid PGID] <container id> [signal]

Sends a signal to the container's init process, to one process (--pid), to a process group
(--pgid) or to every process of the container (--all). PIDs are those of the container's PID
namespace, as with runsc ps.

The signal SIGCKPT (name, or the number set by --ckpt-signal, 62 by default) makes a process with
the default disposition write its checkpoint image (--ckpt-file, default %N.ckpt in its working
directory) and continue; SIGCKPTEXIT (63) writes the image and exits. A process that handles or
ignores the signal gets an ordinary signal. Any other signal is sent as by runsc kill.

EXAMPLE:
       # runsc-ckpt kill mycontainer SIGCKPT
       # runsc-ckpt kill --pid 7 mycontainer SIGCKPTEXIT

`
}

// Execute implements subcommands.Command.Execute.
func (k *killCommand) Execute(ctx context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	if f.NArg() != 2 || !mayNameCkptSignal(f.Arg(1)) {
		return k.Kill.Execute(ctx, f, args...)
	}
	conf := args[0].(*config.Config)
	// SkipCheck: checking that the sandbox still runs is a control RPC, and each one may stall the
	// running guest's threads for ~10 ms (docs/upstream-gaps.md, "Wake-ups held by the sentry's
	// Go scheduler"). The kill channel finds out itself; sendCkptSignal checks before it falls
	// back to the signal helper.
	c, err := container.Load(conf.RootDir, container.FullID{ContainerID: f.Arg(0)}, container.LoadOpts{SkipCheck: true})
	if err != nil {
		util.Fatalf("loading container: %v", err)
	}
	policy, err := sandboxPolicy(conf, c)
	if err != nil {
		util.Fatalf("%v", err)
	}
	sig, isCkpt, err := ckptSignalArg(f.Arg(1), policy)
	if err != nil {
		util.Fatalf("%v", err)
	}
	if !isCkpt {
		return k.Kill.Execute(ctx, f, args...)
	}
	sel, err := killSelectionFromFlags(f)
	if err != nil {
		util.Fatalf("%v", err)
	}
	if err := sendCkptSignal(conf, c, sig, sel, policy); err != nil {
		util.Fatalf("%v", err)
	}
	return subcommands.ExitSuccess
}

// Names of the checkpoint signals on the command line; a "SIG" prefix is optional, case is
// ignored, as for upstream's signal names.
const (
	ckptSignalName     = "CKPT"
	ckptExitSignalName = "CKPTEXIT"
)

// mayNameCkptSignal reports whether s could name a checkpoint signal: one of the names, or a
// number. Anything else (TERM, KILL, ...) goes to upstream's kill without loading the container.
func mayNameCkptSignal(s string) bool {
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if name == ckptSignalName || name == ckptExitSignalName {
		return true
	}
	_, err := strconv.Atoi(s)
	return err == nil
}

// ckptSignalArg resolves the signal argument s under the sandbox's policy p. isCkpt is false for
// a number that is not a checkpoint signal there (it is upstream's business); a name of a
// checkpoint signal in a sandbox where signal checkpoints are disabled is an error.
func ckptSignalArg(s string, p ckpt.Policy) (sig linux.Signal, isCkpt bool, err error) {
	switch strings.TrimPrefix(strings.ToUpper(s), "SIG") {
	case ckptSignalName:
		sig = p.Signal
	case ckptExitSignalName:
		sig = ckpt.SIGCKPTEXIT
	default:
		n, err := strconv.Atoi(s)
		if err != nil {
			return 0, false, fmt.Errorf("signal %q: not a number or a checkpoint signal name", s)
		}
		if p.Signal == 0 || (linux.Signal(n) != p.Signal && linux.Signal(n) != ckpt.SIGCKPTEXIT) {
			return 0, false, nil
		}
		return linux.Signal(n), true, nil
	}
	if p.Signal == 0 {
		return 0, false, fmt.Errorf("signal %q: checkpoint signals are disabled in this sandbox (--ckpt-signal=0)", s)
	}
	return sig, true, nil
}

// sandboxPolicy returns the checkpoint policy of c's sandbox. The sentry builds it from the
// annotations of the spec its `boot` read; the root container's saved spec has the same
// annotations (runsc-ckpt's create/run add the --ckpt-* flags to both, see docs/policy.md), so it
// is read here. The bundle's config.json is the fallback for a state without a spec.
func sandboxPolicy(conf *config.Config, c *container.Container) (ckpt.Policy, error) {
	root := c
	if isSubcontainer(c) {
		var err error
		root, err = container.Load(conf.RootDir, container.FullID{SandboxID: c.Sandbox.ID, ContainerID: c.Sandbox.ID}, container.LoadOpts{Exact: true, SkipCheck: true})
		if err != nil {
			return ckpt.Policy{}, fmt.Errorf("loading the root container of sandbox %q: %w", c.Sandbox.ID, err)
		}
	}
	var annotations map[string]string
	if root.Spec != nil {
		annotations = root.Spec.Annotations
	}
	if data, err := os.ReadFile(filepath.Join(root.BundleDir, "config.json")); root.Spec == nil && err == nil {
		var spec struct {
			Annotations map[string]string `json:"annotations"`
		}
		if err := json.Unmarshal(data, &spec); err != nil {
			return ckpt.Policy{}, fmt.Errorf("decoding %s/config.json: %w", root.BundleDir, err)
		}
		annotations = spec.Annotations
	}
	p, err := ckpt.DefaultPolicy().WithAnnotations(annotations)
	if err != nil {
		return ckpt.Policy{}, fmt.Errorf("sandbox %q: checkpoint policy: %w", root.ID, err)
	}
	return p, nil
}

// killSelection is which processes kill addresses, from its flags.
type killSelection struct {
	all  bool
	pid  int
	pgid int
}

// killSelectionFromFlags reads upstream kill's --all, --pid and --pgid from f.
func killSelectionFromFlags(f *flag.FlagSet) (killSelection, error) {
	var sel killSelection
	var err error
	modes := 0
	if v := f.Lookup("all"); v != nil && v.Value.String() == "true" {
		sel.all = true
		modes++
	}
	if v := f.Lookup("pid"); v != nil {
		if sel.pid, err = strconv.Atoi(v.Value.String()); err != nil {
			return sel, fmt.Errorf("--pid: %w", err)
		}
		if sel.pid != 0 {
			modes++
		}
	}
	if v := f.Lookup("pgid"); v != nil {
		if sel.pgid, err = strconv.Atoi(v.Value.String()); err != nil {
			return sel, fmt.Errorf("--pgid: %w", err)
		}
		if sel.pgid != 0 {
			modes++
		}
	}
	if modes > 1 {
		return sel, fmt.Errorf("it is invalid to specify more than one of --all, --pid, and --pgid")
	}
	if sel.pid < 0 || sel.pgid < 0 {
		return sel, fmt.Errorf("--pid and --pgid must be positive")
	}
	return sel, nil
}

// killTargets returns the pids to signal for sel in container c: the pid, every process of the
// process group (--pgid), every process of the container (--all), or the container's init.
//
// A process group is expanded here rather than sent as kill(-pgid): kill(-1) means "every
// process", so group 1 (the init's, usually) could not be addressed that way.
func killTargets(c *container.Container, sel killSelection) ([]int, error) {
	if sel.pid != 0 {
		return []int{sel.pid}, nil
	}
	if sel.pgid == 0 && !sel.all && isSandboxRoot(c) {
		// The root container's init is the sandbox's first process: pid 1 of the root PID
		// namespace, after a restore too. Not listing the processes saves a control RPC, and
		// each one may stall the running guest's threads for ~10 ms (docs/upstream-gaps.md,
		// "Wake-ups held by the sentry's Go scheduler").
		return []int{1}, nil
	}
	procs, err := c.Processes()
	if err != nil {
		return nil, fmt.Errorf("listing the processes of container %q: %w", c.ID, err)
	}
	var out []int
	for _, p := range procs {
		switch {
		case sel.all, sel.pgid != 0 && int(p.PGID) == sel.pgid:
			out = append(out, int(p.PID))
		case !sel.all && sel.pgid == 0 && p.PPID == 0 && (len(out) == 0 || int(p.PID) < out[0]):
			// The container's init has no parent in the sandbox and the lowest pid of the
			// processes without one (later ones were started by exec).
			out = []int{int(p.PID)}
		}
	}
	if len(out) == 0 {
		if sel.pgid != 0 {
			return nil, fmt.Errorf("container %q has no process in group %d: %w", c.ID, sel.pgid, unix.ESRCH)
		}
		return nil, fmt.Errorf("container %q has no process to signal", c.ID)
	}
	// The container's init last: its exit (SIGCKPTEXIT) kills the helper with the container, and
	// every other target must have been signalled by then.
	slices.SortStableFunc(out, func(a, b int) int { return cmp.Compare(b2i(a == 1), b2i(b == 1)) })
	return out, nil
}

// b2i is 1 for true and 0 for false.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sendCkptSignal sends sig to the processes sel of container c: through the sandbox's kill channel
// (kill_fifo.go), or, for a sandbox without one, by running the signal helper inside the
// container and waiting for it.
func sendCkptSignal(conf *config.Config, c *container.Container, sig linux.Signal, sel killSelection, p ckpt.Policy) error {
	if isSubcontainer(c) && hasOwnPIDNamespace(c.Spec) {
		// ps lists root-namespace pids; the helper would interpret them in the container's.
		return fmt.Errorf("container %q has its own PID namespace: checkpoint signals from the host are supported for the sandbox's root container and for containers sharing its PID namespace", c.ID)
	}
	targets, err := killTargets(c, sel)
	if err != nil {
		return err
	}
	if c.Sandbox != nil {
		errnos, err := sendViaKillChannel(conf.RootDir, c.Sandbox.ID, sig, targets)
		if !errors.Is(err, errNoKillChannel) {
			if err != nil {
				return fmt.Errorf("container %q: %w", c.ID, err)
			}
			return killResult(sig, targets, errnos, sel.all)
		}
		log.Debugf("kill: %v; sending through the signal helper", err)
	}
	// Loaded without the check (Execute): a sandbox that is gone is found out here.
	c.CheckStopped()
	if c.Status == container.Stopped {
		return fmt.Errorf("container %q is not running", c.ID)
	}
	helper, err := helperFile(signalHelperName, treefmt.SignalHelper())
	if err != nil {
		return err
	}
	// Execute passes the file to the sandbox, which keeps its own descriptor.
	defer helper.Close()
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devNull.Close()
	reportR, reportW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("creating the signal helper's report pipe: %w", err)
	}
	defer reportR.Close()
	// The helper's stderr is relayed through a pipe too: the sandbox keeps its own offset for an
	// imported file, so it would overwrite what this process writes to the same stderr file.
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("creating the signal helper's stderr pipe: %w", err)
	}
	defer stderrR.Close()
	e := &control.ExecArgs{
		Argv:             signalHelperArgv(sig, targets),
		WorkingDirectory: "/",
		KUID:             0,
		KGID:             0,
		Capabilities:     signalHelperCaps(),
		FilePayload:      control.NewFilePayload(map[int]*os.File{0: devNull, 1: reportW, 2: stderrW}, helper),
	}
	if p.Group >= 0 {
		// The sender of a checkpoint signal must be allowed to checkpoint (sigckpt.go).
		e.ExtraKGIDs = []auth.KGID{auth.KGID(p.Group)}
	}
	pid, err := c.Execute(conf, e)
	// The sandbox has its own copies; EOF comes when the helper is gone (or, if a guest process
	// opened them through /proc, never: kill_guard.go bounds every read).
	reportW.Close()
	stderrW.Close()
	if err != nil {
		return fmt.Errorf("running the signal helper in container %q: %w", c.ID, err)
	}
	done := make(chan struct{})
	relayed := make(chan struct{})
	go func() {
		defer close(relayed)
		relayHelperStderr(os.Stderr, stderrR, done)
	}()
	type reportResult struct {
		b   []byte
		err error
	}
	reported := make(chan reportResult, 1)
	go func() {
		b, err := readReport(reportR, len(targets), done)
		reported <- reportResult{b, err}
	}()
	ws, waitErr := waitHelper(c, pid, done)
	rep := <-reported
	<-relayed
	report, readErr := rep.b, rep.err
	if readErr != nil {
		return fmt.Errorf("reading the signal helper's report: %w", readErr)
	}
	errnos, err := parseSignalHelperReport(report, targets)
	if err != nil {
		if waitErr != nil {
			return fmt.Errorf("%v; waiting for it (pid %d): %v", err, pid, waitErr)
		}
		if ws.Exited() && ws.ExitStatus() == signalHelperUsage {
			return fmt.Errorf("%v: the signal helper refused (exit %d: bad arguments, or no sys_checkpoint in this sandbox)", err, signalHelperUsage)
		}
		return fmt.Errorf("%v (wait status %#x)", err, uint32(ws))
	}
	return killResult(sig, targets, errnos, sel.all)
}

// killResult is the command's error for the per-target errnos of the helper's kill(2) calls: nil
// if every signal was sent, else one error naming each failure. With all (--all), a process that
// is gone (ESRCH) since the container's processes were listed is no failure, as long as one
// process was signalled.
func killResult(sig linux.Signal, targets []int, errnos []unix.Errno, all bool) error {
	var failed []string
	sent := 0
	for i, errno := range errnos {
		switch {
		case errno == 0:
			sent++
		case all && errno == unix.ESRCH:
		default:
			failed = append(failed, fmt.Sprintf("kill(%d, %d): %v", targets[i], sig, errno))
		}
	}
	if len(failed) == 0 && sent == 0 {
		return fmt.Errorf("kill(%v, %d): %v", targets, sig, unix.ESRCH)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s", strings.Join(failed, "; "))
	}
	return nil
}

// signalHelperCaps are the helper's capabilities: CAP_KILL only, enough to signal any process of
// the container like upstream's kill, which acts as the sandbox itself.
func signalHelperCaps() *auth.TaskCapabilities {
	kill := auth.CapabilitySetOf(linux.CAP_KILL)
	return &auth.TaskCapabilities{PermittedCaps: kill, EffectiveCaps: kill, BoundingCaps: kill}
}

// isSandboxRoot reports whether c is its sandbox's root container (the one the sandbox is named
// after). Upstream's Container.IsSandboxRoot decides from the spec's annotations instead, which
// a container created by another runtime need not carry; the state file is what runsc-ckpt trusts.
func isSandboxRoot(c *container.Container) bool {
	return c.Sandbox != nil && c.ID == c.Sandbox.ID
}

// isSubcontainer reports whether c joined a sandbox whose root container is another.
func isSubcontainer(c *container.Container) bool {
	return c.Sandbox != nil && c.ID != c.Sandbox.ID
}

// hasOwnPIDNamespace reports whether spec asks for a new PID namespace.
func hasOwnPIDNamespace(spec *specs.Spec) bool {
	if spec == nil || spec.Linux == nil {
		return false
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace && ns.Path == "" {
			return true
		}
	}
	return false
}
