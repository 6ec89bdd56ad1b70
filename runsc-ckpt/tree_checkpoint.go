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
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
	"gvisor.dev/gvisor/pkg/log"
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
// runs a helper inside the container (treefmt.FreezeHelper, a 44-byte static program passed in a
// memfd as exec's FilePayload) whose stdout is a host pipe; the helper calls
// sys_checkpoint(CKPT_FREEZE_TREE, 1, 0, flags), so the sentry writes the tree stream of every
// process of the container (the helper itself is not part of it) straight into the pipe, and this
// process splits it into DIR (or copies it to stdout for "-"). Into a directory, the helper also
// gets one empty host file per process (fds 3, 4, ...) and the sentry writes each image straight
// into its own file; the stream then only names those (tree_checkpoint_files.go). Without --leave-running the sentry
// keeps the container stopped, exactly as written, until the helper has exited, and kills it then
// if the helper exited 0. The helper waits on its stdin (a host pipe) for this process to confirm
// that every file is written: one byte, or end of file if writing failed (the helper then exits
// EPIPE and the container runs on). Otherwise the helper's exit status is the call's errno.

// treeHelperName is the in-container helper's argv[0].
const treeHelperName = "runsc-ckpt-tree-helper"

// elfCheckpointOpts are elfCheckpoint's options.
type elfCheckpointOpts struct {
	// leaveRunning keeps the container running afterwards (--leave-running, --pre-dump).
	leaveRunning bool
	// parentPath is --parent-path: the checkpoint the new one is incremental against, relative to
	// the image directory or absolute; empty for a complete checkpoint.
	parentPath string
	// noImageFiles sends every image through the stream (the retry for a sandbox that refused
	// image files).
	noImageFiles bool
	// digest is the algorithm of the manifest's digests (chooseCheckpointDigest); empty: the
	// default.
	digest treefmt.DigestAlg
}

// elfCheckpoint writes an ELF tree checkpoint of every process of container c to imagePath (a
// directory, created if missing; files in it other than a tree checkpoint's are kept, see
// treefmt.SplitStreamReplace), or "-" for the stream on stdout. Without leaveRunning the container's
// processes are killed once the checkpoint is complete.
func elfCheckpoint(conf *config.Config, c *container.Container, imagePath string, opts elfCheckpointOpts) (err error) {
	leaveRunning := opts.leaveRunning
	if isSubcontainer(c) && hasOwnPIDNamespace(c.Spec) {
		return fmt.Errorf("container %q has its own PID namespace: ELF checkpoints are supported for the sandbox's root container and containers sharing its PID namespace", c.ID)
	}
	// An incremental checkpoint (--parent-path) is made on the host while the stream is split
	// (tree_checkpoint_incr.go); its parent is checked before anything is frozen.
	transform, err := incrementalTransform(c, imagePath, opts.parentPath)
	if err != nil {
		return err
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
	flags := uint32(ckptabi.CKPT_TREE_KILL)
	if leaveRunning {
		flags = 0
	}
	if opts.digest == treefmt.DigestSHA256 {
		flags |= ckptabi.CKPT_TREE_SHA256
	}
	// Into a directory, the images of the first processes go straight into host files of the
	// staging directory (the helper's fds 3, 4, ...), and only the rest of the checkpoint through
	// the pipe (tree_checkpoint_files.go).
	var stage *treefmt.Stage
	var imageFiles []*os.File
	if imagePath != "-" {
		if stage, err = treefmt.NewStage(imagePath); err != nil {
			return err
		}
		defer stage.Close()
		n := 0
		if !opts.noImageFiles {
			n = imageFileCount(c)
		}
		if imageFiles, err = stage.ImageFiles(n); err != nil {
			return err
		}
		flags |= uint32(len(imageFiles)) << ckptabi.CKPT_TREE_IMAGE_FDS_SHIFT
	}
	helper, err := helperFile(treeHelperName, treefmt.FreezeHelper(flags))
	if err != nil {
		return err
	}
	defer helper.Close()
	// The helper writes nothing but the stream (fd 1) and reads only this side's confirmation
	// (fd 0); its result is its exit status.
	devNull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devNull.Close()
	ackR, ackW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer ackR.Close()
	defer ackW.Close()
	streamR, streamW, err := os.Pipe()
	if err != nil {
		return err
	}
	defer streamR.Close()
	growPipe(streamW)

	// Read the stream while the sentry writes it. If reading fails (the image directory's
	// filesystem is full, stdout is closed), the read end is closed at once: the sentry's next
	// write fails with EPIPE, so the freeze fails and (without --leave-running) nothing is
	// killed. Left open, the sentry would wait for ever on the full pipe.
	done := make(chan error, 1)
	go func() {
		var err error
		if imagePath == "-" {
			_, err = io.Copy(os.Stdout, streamR)
		} else {
			// The directory may be an engine's, reused and holding other files (Podman's):
			// the new checkpoint replaces only the names a tree checkpoint writes, once it is
			// complete.
			err = stage.ReceiveReplace(streamR, transform)
		}
		if err != nil {
			streamR.Close()
		}
		done <- err
	}()

	caps := auth.CapabilitySetOf(linux.CAP_SYS_PTRACE)
	fds := map[int]*os.File{0: ackR, 1: streamW, 2: devNull}
	for i, f := range imageFiles {
		fds[3+i] = f
	}
	e := &control.ExecArgs{
		Argv:             []string{treeHelperName},
		WorkingDirectory: "/",
		Capabilities:     &auth.TaskCapabilities{PermittedCaps: caps, EffectiveCaps: caps, BoundingCaps: caps},
		FilePayload:      control.NewFilePayload(fds, helper),
	}
	if policy.Group >= 0 {
		e.ExtraKGIDs = []auth.KGID{auth.KGID(policy.Group)}
	}
	pid, err := c.Execute(conf, e)
	streamW.Close()
	ackR.Close()
	if err != nil {
		// The reader fails at once; wait for it, so that it is not writing into the staging
		// directory while that is removed.
		streamR.Close()
		<-done
		return fmt.Errorf("running the checkpoint helper in container %q: %w", c.ID, err)
	}
	// The sentry has its own copies of the image files.
	for _, f := range imageFiles {
		f.Close()
	}
	readErr := <-done
	if readErr == nil && imagePath != "-" {
		if readErr = addSpecHash(imagePath, c); readErr != nil {
			_ = treefmt.RemoveTree(imagePath)
		}
	}
	if readErr == nil {
		// Every file is written: the helper may exit 0 (and the sentry kill the container).
		_, readErr = ackW.Write([]byte{'k'})
	}
	ackW.Close()
	ws, waitErr := c.WaitPID(pid)
	if waitErr == nil && syscall.Errno(ws.ExitStatus()) == syscall.EINVAL && len(imageFiles) > 0 {
		// A sandbox started by an older runsc-ckpt knows no image files and refuses the flags
		// with EINVAL before it stops anything: once more with every image in the stream.
		log.Infof("checkpoint: the sandbox refused image files (EINVAL); retrying through the stream alone")
		opts.noImageFiles = true
		return elfCheckpoint(conf, c, imagePath, opts)
	}
	if waitErr == nil && ws.ExitStatus() != 0 {
		if imagePath != "-" && readErr == nil {
			// A complete stream from a helper that failed afterwards is not trusted: remove
			// the tree files (only those; the directory may hold an engine's files).
			_ = treefmt.RemoveTree(imagePath)
		}
		if readErr != nil && syscall.Errno(ws.ExitStatus()) == syscall.EPIPE {
			// The freeze failed because this side stopped reading: say why.
			return fmt.Errorf("checkpoint of container %q failed writing %s: %w (the container runs on)", c.ID, imagePath, readErr)
		}
		return fmt.Errorf("checkpoint of container %q failed: %v", c.ID, describeTreeErrno(syscall.Errno(ws.ExitStatus())))
	}
	if readErr != nil {
		return fmt.Errorf("writing the checkpoint of container %q: %w", c.ID, readErr)
	}
	return nil
}

// growPipe makes the pipe of w as large as the host allows (fs.pipe-max-size, 1 MiB by default;
// the default is 64 KiB). The sentry writes the stream into it from a task goroutine that waits
// through the host fd notifier each time the pipe is full; on a loaded machine each of those waits
// costs milliseconds, so with 64 KiB a 256 MiB checkpoint waited thousands of times (22 s at
// load 25). Failure leaves the default size: slower, not wrong.
func growPipe(w *os.File) {
	size := 1 << 20
	if b, err := os.ReadFile("/proc/sys/fs/pipe-max-size"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > size {
			size = min(n, 16<<20)
		}
	}
	_, _ = unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, size)
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
