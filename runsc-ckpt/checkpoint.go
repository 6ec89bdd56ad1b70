package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/subcommands"
	"gvisor.dev/gvisor/pkg/sentry/state/checkpointfiles"
	"gvisor.dev/gvisor/runsc/cmd"
	"gvisor.dev/gvisor/runsc/cmd/util"
	"gvisor.dev/gvisor/runsc/config"
	"gvisor.dev/gvisor/runsc/container"
	"gvisor.dev/gvisor/runsc/flag"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
)

// checkpointCommand is upstream's checkpoint with every flag runc's checkpoint has (criu_flags.go)
// and the files engines look for in the image directory.
type checkpointCommand struct {
	cmd.Checkpoint
	criu criuFlags
	// format is --format: elf or gvisor (chooseCheckpointFormat, tree_checkpoint.go).
	format string
	// digest is --digest: crc32c or sha256 (chooseCheckpointDigest, tree_checkpoint_digest.go).
	digest string
}

// Usage implements subcommands.Command.Usage.
func (*checkpointCommand) Usage() string {
	return `checkpoint [flags] <container id> - save current state of container.

Writes the container's whole sandbox (its processes, memory, files, sockets) into --image-path.
Without --leave-running the container stops afterwards, as with runc. The runc/CRIU flags engines
pass (--work-path, --file-locks, --tcp-established, --pre-dump, ...) are accepted; what each means
under gVisor is in its help line below and in docs/engines.md.

`
}

// SetFlags implements subcommands.Command.SetFlags.
func (c *checkpointCommand) SetFlags(f *flag.FlagSet) {
	c.Checkpoint.SetFlags(f)
	c.criu.register(f, forCheckpoint)
	f.StringVar(&c.format, "format", "", "checkpoint format: elf (one ELF image per process, docs/tree-format.md) or gvisor (upstream's state file); default: --ckpt-format, the container's annotation "+formatAnnotation+", else gvisor")
	f.StringVar(&c.digest, "digest", "", digestFlagHelp("--ckpt-digest, the container's annotation "+digestAnnotation))
}

// Execute implements subcommands.Command.Execute.
func (c *checkpointCommand) Execute(ctx context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	if f.NArg() != 1 {
		f.Usage()
		return subcommands.ExitUsageError
	}
	if err := c.criu.check(); err != nil {
		util.Fatalf("checkpoint: %v", err)
	}
	imagePath := f.Lookup("image-path").Value.String()
	// A bad --digest or --ckpt-digest is a usage error (exit 2) before anything is looked at.
	if _, err := chooseCheckpointDigest(c.digest, ckptDigestFlag, nil); err != nil {
		fmt.Fprintf(os.Stderr, "checkpoint: %v\n", err)
		return subcommands.ExitUsageError
	}
	// The one place the format is chosen: --format, --ckpt-format, the container's annotation.
	conf := args[0].(*config.Config)
	cont, err := container.Load(conf.RootDir, container.FullID{ContainerID: f.Arg(0)}, container.LoadOpts{})
	if err != nil {
		util.Fatalf("checkpoint: loading container: %v", err)
	}
	format, err := chooseCheckpointFormat(c.format, ckptFormatFlag, cont)
	if err != nil {
		util.Fatalf("checkpoint: %v", err)
	}
	digest, err := chooseCheckpointDigest(c.digest, ckptDigestFlag, cont)
	if err != nil {
		fmt.Fprintf(os.Stderr, "checkpoint: %v\n", err)
		return subcommands.ExitUsageError
	}
	if c.digest != "" && format != formatELF {
		fmt.Fprintf(os.Stderr, "checkpoint: --digest applies to --format=elf checkpoints, this one is %s\n", format)
		return subcommands.ExitUsageError
	}
	if c.criu.preDump && format != formatELF {
		// runc leaves the container running after a pre-dump and the final dump completes the
		// image; gVisor's final image is complete by itself, so a pre-dump has nothing to do.
		// (In the ELF format a pre-dump is a checkpoint that leaves the container running: the
		// parent of the next, incremental one.)
		if err := preDump(imagePath); err != nil {
			util.Fatalf("checkpoint --pre-dump: %v", err)
		}
		return subcommands.ExitSuccess
	}
	st := subcommands.ExitSuccess
	switch format {
	case formatELF:
		if imagePath == "" {
			util.Fatalf("checkpoint: image-path flag must be provided")
		}
		// The previous tree checkpoint in imagePath is replaced only once the new one is
		// complete (treefmt.SplitStreamReplace); an upstream image there is stale after that.
		opts := elfCheckpointOpts{
			leaveRunning: c.criu.preDump || f.Lookup("leave-running").Value.String() == "true",
			parentPath:   c.criu.parentPath,
			digest:       digest,
		}
		if err := elfCheckpoint(conf, cont, imagePath, opts); err != nil {
			util.Fatalf("checkpoint: %v", err)
		}
		if imagePath == "-" {
			return st // A stream on stdout: no directory for the engine files.
		}
		if err := removeOldImage(imagePath, false /* tree */); err != nil {
			util.Fatalf("checkpoint: %v", err)
		}
	default:
		if err := removeOldImage(imagePath, true /* tree */); err != nil {
			util.Fatalf("checkpoint: %v", err)
		}
		st = c.Checkpoint.Execute(ctx, f, args...)
	}
	if st != subcommands.ExitSuccess {
		return st
	}
	if err := writeEngineFiles(imagePath); err != nil {
		util.Fatalf("checkpoint: %v", err)
	}
	if err := c.criu.signalStatusFD(); err != nil {
		util.Fatalf("checkpoint: %v", err)
	}
	return st
}

// preDump makes the image directory a pre-dump would write into, so that an engine finds it.
func preDump(imagePath string) error {
	if imagePath == "" {
		return fmt.Errorf("image-path flag must be provided")
	}
	return os.MkdirAll(imagePath, 0o755)
}

// removeOldImage removes the files of an earlier checkpoint, in either format, from imagePath.
// runc (CRIU) overwrites an image directory, and engines reuse theirs (Podman checkpoints a
// container into the same userdata/checkpoint every time); upstream's save refuses to replace a
// file (O_EXCL). Only the names runsc-ckpt writes are removed; other files stay. tree says whether
// an ELF tree checkpoint's files go too (manifest first: a stale manifest would make restore take
// the directory for an ELF checkpoint).
func removeOldImage(imagePath string, tree bool) error {
	if imagePath == "" || imagePath == "-" {
		return nil // upstream reports the missing flag; "-" is no directory
	}
	if tree {
		if err := treefmt.RemoveTree(imagePath); err != nil {
			return err
		}
	}
	for _, name := range []string{checkpointfiles.StateFileName, checkpointfiles.PagesMetadataFileName, checkpointfiles.PagesFileName, inventoryFile} {
		if err := os.Remove(filepath.Join(imagePath, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing the previous image: %w", err)
		}
	}
	return nil
}
