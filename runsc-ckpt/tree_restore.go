package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"gvisor.dev/gvisor/pkg/sentry/control"
	"gvisor.dev/gvisor/runsc/config"
	"gvisor.dev/gvisor/runsc/container"
	"gvisor.dev/gvisor/runsc/specutils"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treeincr"
)

// The host side of restoring an ELF (tree) checkpoint:
//
//	runsc-ckpt restore --image-path DIR|- --bundle B [--detach] [--pid-file F] CID
//
// creates a new sandbox from the bundle whose init is not the bundle's program but the restore
// init (treefmt.RestoreInit, a single-threaded 200-byte program): it calls
// sys_checkpoint(CKPT_THAW_TREE, DIR, -1, CKPT_TREE_SELF) and becomes the checkpoint's pid 1; the
// sentry recreates every other process with its pid (pkg/sentry/ckpt/thaw_tree.go). The bundle is
// not modified: a derived bundle under runsc's --root holds the changed config.json and the init
// (removed by delete, like the policy's derived bundles). When the rootfs is not the host's /, the
// derived bundle's directory and DIR are bind-mounted read-only at /.runsc-ckpt-restore and
// /.runsc-ckpt-restore/tree. stdio is the new container's, as with upstream's restore.

// restoreMountPoint is where the init and the checkpoint appear in a container whose rootfs is
// not the host's /.
const restoreMountPoint = "/.runsc-ckpt-restore"

// restoreTimeout bounds the wait for a restore to complete.
const restoreTimeout = 2 * time.Minute

// isELFCheckpointDir reports whether dir holds an ELF tree checkpoint (its manifest).
func isELFCheckpointDir(dir string) bool { return treefmt.IsTreeDir(dir) }

// elfRestoreArgs is what elfRestore needs from the command line.
type elfRestoreArgs struct {
	// self is this binary, globals the global flags it was started with (before the command).
	self    string
	globals []string
	id      string
	bundle  string
	image   string // DIR, or "-" for a stream on stdin.
	detach  bool
	pidFile string
	// verify checks every image's digest (restore --verify-digests); a stream is verified by
	// SplitStream as it is written out.
	verify bool
	// clock is restore --restore-clock ("" if not given; tree_restore_clock.go).
	clock string
	// consoleSocket is restore --console-socket: where a terminal container's engine waits for
	// the new pty's master (tree_restore_console.go). terminal is the bundle's
	// process.terminal.
	consoleSocket string
	terminal      bool
}

// elfRestore restores the ELF checkpoint a.image as container a.id from bundle a.bundle. It returns
// once the tree runs again (with --detach) or when the container exits (without), with the
// container's exit status; a failed restore leaves nothing running.
func elfRestore(conf *config.Config, a elfRestoreArgs) (int, error) {
	if a.bundle == "" {
		a.bundle = "."
	}
	bundle, err := filepath.Abs(a.bundle)
	if err != nil {
		return 0, err
	}
	if a.image == "-" {
		tmp, err := os.MkdirTemp(conf.RootDir, derivedBundlePrefix+a.id+"_stream_")
		if err != nil {
			return 0, fmt.Errorf("creating a directory for the streamed checkpoint: %w", err)
		}
		dir := filepath.Join(tmp, "tree")
		if err := treefmt.SplitStream(os.Stdin, dir); err != nil {
			os.RemoveAll(tmp)
			return 0, fmt.Errorf("reading the checkpoint stream from stdin: %w", err)
		}
		// SplitStream has compared every digest while it wrote the files.
		a.image = dir
		a.verify = false
	}
	image, err := filepath.Abs(a.image)
	if err != nil {
		return 0, err
	}
	check := treefmt.CheckDir
	if a.verify {
		check = treefmt.VerifyDir
	}
	m, err := check(image)
	if err != nil {
		return 0, fmt.Errorf("checkpoint %s: %w", image, err)
	}
	// An incremental checkpoint's parents, checked as the checkpoint itself (tree_restore_incr.go).
	chain, err := treeincr.OpenChain(image, m, a.verify)
	if err != nil {
		return 0, fmt.Errorf("checkpoint %s: %w", image, err)
	}
	data, spec, err := readBundleSpec(bundle, conf)
	if err != nil {
		return 0, err
	}
	a.terminal = spec.Process != nil && spec.Process.Terminal
	mode, err := chooseRestoreClock(a.clock, ckptRestoreClockFlag, spec.Annotations)
	if err != nil {
		return 0, err
	}
	// Continuing the clock needs the freeze's; a manifest written before it was recorded
	// restores with the new sandbox's.
	held := mode == clockContinue && m.Clock != nil
	derived, err := writeRestoreBundle(conf, a.id, bundle, data, spec, image, m, chain, held)
	if err != nil {
		return 0, err
	}
	globals := append(append([]string{}, a.globals...), rootfsUpperFlags(conf, m)...)
	var exited <-chan error
	if held {
		var cleanup func()
		exited, cleanup, err = clockRestore(conf, a, derived, m, globals)
		if err != nil {
			deleteContainer(a.self, a.globals, a.id)
			return 0, fmt.Errorf("restoring container %q from %s with its clock (--restore-clock=reset restores without): %w", a.id, image, err)
		}
		defer cleanup()
	} else {
		args := append(append(globals, "run", "--bundle", derived), a.createFlags()...)
		args = append(args, a.id)
		cmd := exec.Command(a.self, args...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			return 0, fmt.Errorf("starting the restored container: %w", err)
		}
		ch := make(chan error, 1)
		go func() { ch <- cmd.Wait() }()
		exited = ch
	}

	w := waitRestored(conf, a.id, m, exited, a.detach)
	if !w.ok {
		deleteContainer(a.self, a.globals, a.id)
		seekStderrToEnd()
		err := w.err
		if err == nil {
			err = errors.New("the restore init exited before the tree ran (its lines above, from the container's stderr, say why)")
		}
		return 0, fmt.Errorf("restoring container %q from %s: %w", a.id, image, err)
	}
	if !w.runDone {
		w.runErr = <-exited
	}
	if held && !a.detach {
		// `run` removes its container when it returns; upstream's restore leaves it stopped.
		destroyContainer(conf, a.id)
	}
	var ee *exec.ExitError
	if !a.detach && errors.As(w.runErr, &ee) {
		return ee.ExitCode(), nil
	}
	return 0, w.runErr
}

// seekStderrToEnd moves our stderr's offset past what the sandbox wrote to it, when it is a
// regular file (`restore ... 2>log`): the restore init's reason line (CKPT_TREE_REPORT) went
// there through the sentry, which writes a host file at an offset of its own, so our error would
// otherwise overwrite it.
func seekStderrToEnd() {
	if st, err := os.Stderr.Stat(); err == nil && st.Mode().IsRegular() {
		_, _ = os.Stderr.Seek(0, io.SeekEnd)
	}
}

// restoreWait is the outcome of waitRestored.
type restoreWait struct {
	ok      bool  // The tree runs.
	err     error // Why not, if known.
	runDone bool  // The run command has exited, with runErr.
	runErr  error
}

// waitRestored polls container id until the restored tree runs (every live process of m present,
// pid 1 no longer the restore init), the container stops, the run command fails, or (without
// detach, where run only returns when the container exits) run returns.
func waitRestored(conf *config.Config, id string, m *treefmt.Manifest, exited <-chan error, detach bool) restoreWait {
	var w restoreWait
	var refused refusals // tree_restore_answer.go
	for deadline := time.Now().Add(restoreTimeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if !w.runDone {
			select {
			case w.runErr = <-exited:
				w.runDone = true
			default:
			}
		}
		if w.runDone && (w.runErr != nil || !detach) {
			w.err = w.runErr
			return w
		}
		c, running, err := loadRunning(conf, id)
		if err != nil {
			continue
		}
		if !running {
			return w
		}
		procs, err := c.Processes()
		if err == nil && treeRunning(procs, m) {
			w.ok = true
			return w
		}
		if refused.stopped(err, w.runDone, time.Now()) {
			w.err = fmt.Errorf("the sandbox stopped answering: %w (the restore init exited; its lines above, from the container's stderr, say why)", err)
			return w
		}
	}
	w.err = fmt.Errorf("the tree did not run within %v", restoreTimeout)
	return w
}

// loadRunning loads container id and reports whether its sandbox still runs: Load checks the
// sandbox itself (the state file alone keeps saying running after the restore init has exited).
// An error is a failure to load it, worth another try.
func loadRunning(conf *config.Config, id string) (*container.Container, bool, error) {
	c, err := container.Load(conf.RootDir, container.FullID{ContainerID: id}, container.LoadOpts{})
	if err != nil {
		return nil, false, err
	}
	return c, c.Status != container.Stopped && (c.Sandbox == nil || c.Sandbox.IsRunning()), nil
}

// treeRunning reports whether the restored tree runs: every live process of m that is present
// has finished its thaw — its name is its own again, no longer the restore init's, which every
// process of the tree bears from its creation until its thaw sets it — and either pid 1 has (it
// thaws itself only once every other process of the tree has begun its thaw, so none is still to
// come) or every live process of m is present. A restored process may exit at once (a pipeline
// member whose peer is gone), so waiting for every process alone could wait forever. Returning
// when only pid 1 had finished let `ps` right after a detached restore see a process still named
// restore-init (a busybox thaw took 397 ms on a loaded machine).
func treeRunning(procs []*control.Process, m *treefmt.Manifest) bool {
	have := make(map[int32]string)
	for _, p := range procs {
		have[int32(p.PID)] = p.Cmd
	}
	thawing := func(p *treefmt.Process) bool {
		cmd, ok := have[p.PID]
		return ok && cmd == restoreInitName && p.Comm != restoreInitName
	}
	all := true
	for i := range m.Processes {
		p := &m.Processes[i]
		if p.Zombie != nil {
			continue
		}
		if thawing(p) {
			return false
		}
		if _, ok := have[p.PID]; !ok {
			all = false
		}
	}
	if all {
		return true
	}
	root := m.Process(1)
	cmd, ok := have[1]
	return root != nil && root.Zombie == nil && ok && cmd != restoreInitName
}

// restoreInitName is the restore init's file name (and so its comm while it restores).
const restoreInitName = treefmt.RestoreInitName

// writeRestoreBundle writes the derived bundle of a restore: the bundle's config.json (data, and
// spec as runsc reads it: readBundleSpec) with the restore init as the process and, unless the
// rootfs is the host's /, the bind mounts that show it and the checkpoint inside the container.
// It returns the derived bundle's directory.
//
// With held, the init is treefmt.HeldRestoreInit (a clock-continuing restore, tree_restore_clock.go).
func writeRestoreBundle(conf *config.Config, id, bundle string, data []byte, spec *specs.Spec, image string, m *treefmt.Manifest, chain []treefmt.ChainDir, held bool) (string, error) {
	if m.SpecSHA256 != "" {
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != m.SpecSHA256 {
			fmt.Fprintf(os.Stderr, "runsc-ckpt restore: warning: %s/config.json differs from the checkpointed container's spec\n", bundle)
		}
	}
	derivedData, err := deriveConfig(data, spec, nil)
	if err != nil {
		return "", err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(derivedData, &doc); err != nil {
		return "", err
	}
	if err := os.MkdirAll(conf.RootDir, 0o711); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(conf.RootDir, derivedBundlePrefix+id+"_restore_")
	if err != nil {
		return "", err
	}
	stage := filepath.Join(dir, "stage")
	if err := os.MkdirAll(filepath.Join(stage, "tree"), 0o755); err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	init := treefmt.RestoreInit()
	if held {
		init = treefmt.HeldRestoreInit()
	}
	if err := os.WriteFile(filepath.Join(stage, restoreInitName), init, 0o755); err != nil {
		return "", err
	}
	initPath, treePath := filepath.Join(stage, restoreInitName), image
	root, _ := filepath.Abs(spec.Root.Path)
	pmounts, err := parentMounts(stage, root == "/", chain)
	if err != nil {
		return "", err
	}
	if root != "/" {
		initPath, treePath = filepath.Join(restoreMountPoint, restoreInitName), filepath.Join(restoreMountPoint, "tree")
		mounts := append([]specs.Mount{}, spec.Mounts...)
		mounts = append(mounts,
			specs.Mount{Destination: restoreMountPoint, Type: "bind", Source: stage, Options: []string{"rbind", "ro"}},
			specs.Mount{Destination: treePath, Type: "bind", Source: image, Options: []string{"rbind", "ro"}})
		mounts = append(mounts, pmounts...)
		if err := setJSON(doc, "mounts", mounts); err != nil {
			return "", err
		}
	}
	if err := setRootfsUpper(conf, doc, spec, image, m); err != nil {
		return "", err
	}
	var process map[string]json.RawMessage
	if err := json.Unmarshal(doc["process"], &process); err != nil {
		return "", fmt.Errorf("process: %w", err)
	}
	if err := setJSON(process, "args", []string{initPath, treePath}); err != nil {
		return "", err
	}
	if err := setJSON(doc, "process", process); err != nil {
		return "", err
	}
	out, err := json.MarshalIndent(doc, "", "\t")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), out, 0o600); err != nil {
		return "", err
	}
	return dir, nil
}

// createFlags are the flags of create that the command which makes the restored container (run,
// or upstream's restore) gets from the restore command: --detach, --pid-file, --console-socket.
func (a *elfRestoreArgs) createFlags() []string {
	var args []string
	if a.detach {
		args = append(args, "--detach")
	}
	if a.pidFile != "" {
		args = append(args, "--pid-file", a.pidFile)
	}
	if a.consoleSocket != "" {
		args = append(args, "--console-socket", a.consoleSocket)
	}
	return args
}

// readBundleSpec reads bundle's config.json once: its bytes (hashed against the manifest and
// rewritten into the derived bundle with unknown fields kept) and the spec runsc makes of them
// (specutils.ReadSpecFromFile: paths made absolute, flag overrides applied), from the same open
// file.
func readBundleSpec(bundle string, conf *config.Config) ([]byte, *specs.Spec, error) {
	f, err := specutils.OpenSpec(bundle)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the bundle's spec: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the bundle's spec: %w", err)
	}
	spec, err := specutils.ReadSpecFromFile(bundle, f, conf)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the bundle's spec: %w", err)
	}
	return data, spec, nil
}

// deleteContainer force-deletes container id (a failed restore), ignoring errors.
func deleteContainer(self string, globals []string, id string) {
	cmd := exec.Command(self, append(append([]string{}, globals...), "delete", "--force", id)...)
	_ = cmd.Run()
}
