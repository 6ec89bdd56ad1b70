package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/ckptabi"
	"gvisor.dev/gvisor/runsc/flag"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/sentry/control"
	"gvisor.dev/gvisor/pkg/sentry/kernel/auth"
	"gvisor.dev/gvisor/runsc/config"
	"gvisor.dev/gvisor/runsc/container"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
)

// The host side of an ELF (tree) checkpoint of a whole container:
//
//	runsc-ckpt checkpoint --format=elf --image-path DIR|- [--leave-running] CID
//
// runs a helper inside the container (this static binary, passed as exec's FilePayload exactly as
// kill's signal helper) whose stdout is a host pipe; the helper calls
// sys_checkpoint(CKPT_FREEZE_TREE, 1, 0, flags), so the sentry writes the tree stream of every
// process of the container (the helper itself is not part of it) straight into the pipe, and this
// process splits it into DIR (or copies it to stdout for "-"). Without --leave-running the sentry
// keeps the container stopped, exactly as written, until the helper has exited, and kills it then.

const (
	// treeHelperName is the in-container helper's argv[0]; treeHelperEnv must be set too.
	treeHelperName = "runsc-ckpt-tree-helper"
	treeHelperEnv  = "RUNSC_CKPT_TREE_HELPER"
)

func init() {
	if len(os.Args) == 0 || os.Args[0] != treeHelperName || os.Getenv(treeHelperEnv) == "" {
		return
	}
	os.Exit(runTreeHelper(os.Args[1:], os.Stderr))
}

// runTreeHelper is the helper: `freeze KILL` writes the stream of every process of its PID
// namespace to fd 1; KILL is 0 or 1.
func runTreeHelper(args []string, stderr io.Writer) int {
	if len(args) != 2 || args[0] != "freeze" {
		fmt.Fprintf(stderr, "%s: usage: %s freeze 0|1\n", treeHelperName, treeHelperName)
		return signalHelperUsage
	}
	if !insideCkptSandbox() {
		fmt.Fprintf(stderr, "%s: not running inside a runsc-ckpt sandbox\n", treeHelperName)
		return signalHelperUsage
	}
	flags := uintptr(0)
	if args[1] == "1" {
		flags = ckptabi.CKPT_TREE_KILL
	}
	_, _, errno := unix.Syscall6(ckptabi.SYS_checkpoint, ckptabi.CKPT_FREEZE_TREE, 1, 0, flags, 0, 0)
	if errno != 0 {
		fmt.Fprintf(stderr, "%s: freezing the container: %v\n", treeHelperName, describeTreeErrno(errno))
		return int(errno)
	}
	return 0
}

// elfCheckpoint writes an ELF tree checkpoint of every process of container c to imagePath (a
// directory, created if missing; files in it other than a tree checkpoint's are kept, see
// treefmt.SplitStreamReplace), or "-" for the stream on stdout. Without leaveRunning the container's
// processes are killed once the checkpoint is complete.
func elfCheckpoint(conf *config.Config, c *container.Container, imagePath string, leaveRunning bool) (err error) {
	if c.Sandbox != nil && c.ID != c.Sandbox.ID && hasOwnPIDNamespace(c.Spec) {
		return fmt.Errorf("container %q has its own PID namespace: ELF checkpoints are supported for the sandbox's root container and containers sharing its PID namespace", c.ID)
	}
	policy, err := sandboxPolicy(conf, c)
	if err != nil {
		return err
	}
	if c.Status == container.Paused {
		// The runc shim (containerd, Docker) pauses a container before it checkpoints it. A
		// paused sandbox runs no task, not even the helper; the tree freeze stops every process
		// at one instant by itself, so the container is resumed for it and, if it keeps
		// running, paused again afterwards (the shim resumes it next).
		if err := c.Resume(); err != nil {
			return fmt.Errorf("resuming paused container %q for the checkpoint: %w", c.ID, err)
		}
		if leaveRunning {
			defer func() {
				if perr := c.Pause(); perr != nil && err == nil {
					err = fmt.Errorf("pausing container %q again after the checkpoint: %w", c.ID, perr)
				}
			}()
		}
	}
	self, err := os.Open("/proc/self/exe")
	if err != nil {
		return fmt.Errorf("opening this binary to run it as the checkpoint helper: %w", err)
	}
	defer self.Close()
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devNull.Close()
	streamR, streamW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer streamR.Close()
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer stderrR.Close()
	var helperErr bytes.Buffer
	relayed := make(chan struct{})
	go func() {
		defer close(relayed)
		_, _ = io.Copy(io.MultiWriter(os.Stderr, &helperErr), stderrR)
	}()

	// Read the stream while the sentry writes it.
	done := make(chan error, 1)
	go func() {
		if imagePath == "-" {
			_, err := io.Copy(os.Stdout, streamR)
			done <- err
			return
		}
		// The directory may be an engine's, reused and holding other files (Podman's): the new
		// checkpoint replaces only the names a tree checkpoint writes, once it is complete.
		done <- treefmt.SplitStreamReplace(streamR, imagePath)
	}()

	kill := "1"
	if leaveRunning {
		kill = "0"
	}
	caps := auth.CapabilitySetOf(linux.CAP_SYS_PTRACE)
	e := &control.ExecArgs{
		Argv:             []string{treeHelperName, "freeze", kill},
		Envv:             []string{treeHelperEnv + "=1"},
		WorkingDirectory: "/",
		Capabilities:     &auth.TaskCapabilities{PermittedCaps: caps, EffectiveCaps: caps, BoundingCaps: caps},
		FilePayload:      control.NewFilePayload(map[int]*os.File{0: devNull, 1: streamW, 2: stderrW}, self),
	}
	if policy.Group >= 0 {
		e.ExtraKGIDs = []auth.KGID{auth.KGID(policy.Group)}
	}
	pid, err := c.Execute(conf, e)
	streamW.Close()
	stderrW.Close()
	if err != nil {
		<-relayed
		return fmt.Errorf("running the checkpoint helper in container %q: %w", c.ID, err)
	}
	ws, waitErr := c.WaitPID(pid)
	<-relayed
	readErr := <-done
	if waitErr == nil && ws.ExitStatus() != 0 {
		if imagePath != "-" && readErr == nil {
			// A complete stream from a helper that failed afterwards is not trusted: remove
			// the tree files (only those; the directory may hold an engine's files).
			_ = treefmt.RemoveTree(imagePath)
		}
		return fmt.Errorf("checkpoint of container %q failed (helper status %d): %s", c.ID, ws.ExitStatus(), bytes.TrimSpace(helperErr.Bytes()))
	}
	if readErr != nil {
		return fmt.Errorf("writing the checkpoint of container %q: %w", c.ID, readErr)
	}
	if imagePath != "-" {
		if err := addSpecHash(imagePath, c); err != nil {
			return err
		}
	}
	return nil
}

// addSpecHash records the SHA-256 of the container's config.json in dir's manifest.
func addSpecHash(dir string, c *container.Container) error {
	data, err := os.ReadFile(filepath.Join(c.BundleDir, "config.json"))
	if err != nil {
		return nil // No spec to hash (the field stays empty).
	}
	m, err := treefmt.ReadManifest(dir)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	m.SpecSHA256 = hex.EncodeToString(sum[:])
	var buf bytes.Buffer
	if err := m.Encode(&buf); err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+treefmt.ManifestName+".tmp")
	if err := os.WriteFile(tmp, buf.Bytes(), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, treefmt.ManifestName))
}

// checkpointFormat is the format a checkpoint is written in.
type checkpointFormat string

const (
	formatGVisor checkpointFormat = "gvisor" // upstream's whole-sandbox state file
	formatELF    checkpointFormat = "elf"    // a tree checkpoint (docs/tree-format.md)

	// formatAnnotation selects the format for a container, overridden by --format.
	formatAnnotation = "dev.runsc-ckpt.checkpoint-format"
)

// parseCheckpointFormat checks a --format / --ckpt-format / annotation value.
func parseCheckpointFormat(s string) (checkpointFormat, error) {
	switch checkpointFormat(s) {
	case formatGVisor, formatELF:
		return checkpointFormat(s), nil
	}
	return "", fmt.Errorf("checkpoint format %q: want %q or %q", s, formatELF, formatGVisor)
}

// chooseCheckpointFormat decides the format of a checkpoint of container c: the command's --format
// if given, else the global --ckpt-format if given, else the container's annotation, else the
// default (gvisor, see docs/tree-format.md).
func chooseCheckpointFormat(cmdFlag, globalFlag string, c *container.Container) (checkpointFormat, error) {
	for _, v := range []string{cmdFlag, globalFlag} {
		if v != "" {
			return parseCheckpointFormat(v)
		}
	}
	if c != nil && c.Spec != nil {
		if v, ok := c.Spec.Annotations[formatAnnotation]; ok {
			f, err := parseCheckpointFormat(v)
			if err != nil {
				return "", fmt.Errorf("annotation %s: %w", formatAnnotation, err)
			}
			return f, nil
		}
	}
	return formatGVisor, nil
}

// ckptFormatFlag is the global --ckpt-format (registerFormatFlag).
var ckptFormatFlag string

// registerFormatFlag registers the global flag --ckpt-format on fs.
func registerFormatFlag(fs *flag.FlagSet) {
	fs.StringVar(&ckptFormatFlag, "ckpt-format", "", "format of `checkpoint`: elf (one ELF image per process, docs/tree-format.md) or gvisor (upstream's state file); default: the container's annotation "+formatAnnotation+", else gvisor")
}
