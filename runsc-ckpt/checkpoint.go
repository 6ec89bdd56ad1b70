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
	"gvisor.dev/gvisor/runsc/flag"
)

// containerFormat names the format of a container checkpoint image directory.
type containerFormat string

// formatUpstream is gVisor's own image (checkpoint.img and its page files), written by the
// sandbox's save and read by its restore.
const formatUpstream containerFormat = "upstream"

// checkpointFormat picks the format `checkpoint` writes for the container cid. This is the one
// place a format selection (a flag, a global option or an annotation of the container) is to be
// added; today every checkpoint is upstream's.
func checkpointFormat(cid string) containerFormat {
	_ = cid
	return formatUpstream
}

// checkpointCommand is upstream's checkpoint with every flag runc's checkpoint has (criu_flags.go)
// and the files engines look for in the image directory.
type checkpointCommand struct {
	cmd.Checkpoint
	criu criuFlags
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
	if c.criu.preDump {
		// runc leaves the container running after a pre-dump and the final dump completes the
		// image; gVisor's final image is complete by itself, so a pre-dump has nothing to do.
		if err := preDump(imagePath); err != nil {
			util.Fatalf("checkpoint --pre-dump: %v", err)
		}
		return subcommands.ExitSuccess
	}
	if err := removeOldImage(imagePath); err != nil {
		util.Fatalf("checkpoint: %v", err)
	}
	var st subcommands.ExitStatus
	switch format := checkpointFormat(f.Arg(0)); format {
	case formatUpstream:
		st = c.Checkpoint.Execute(ctx, f, args...)
	default:
		util.Fatalf("checkpoint: image format %q is not supported", format)
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

// removeOldImage removes the files of an earlier checkpoint from imagePath. runc (CRIU)
// overwrites an image directory, and engines reuse theirs (Podman checkpoints a container into
// the same userdata/checkpoint every time); upstream's save refuses to replace a file (O_EXCL).
func removeOldImage(imagePath string) error {
	if imagePath == "" {
		return nil // upstream reports the missing flag
	}
	for _, name := range []string{checkpointfiles.StateFileName, checkpointfiles.PagesMetadataFileName, checkpointfiles.PagesFileName, inventoryFile} {
		if err := os.Remove(filepath.Join(imagePath, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing the previous image: %w", err)
		}
	}
	return nil
}
