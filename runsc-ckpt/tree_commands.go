package main

import (
	"context"
	"fmt"
	"os"

	"github.com/google/subcommands"
	"gvisor.dev/gvisor/runsc/cmd"
	"gvisor.dev/gvisor/runsc/cmd/util"
	"gvisor.dev/gvisor/runsc/config"
	"gvisor.dev/gvisor/runsc/container"
	"gvisor.dev/gvisor/runsc/flag"
)

// TEMPORARY wiring of the ELF (tree) checkpoint format into checkpoint and restore, until the
// engines' wrappers (runsc-ckpt/checkpoint.go, restore.go, another branch) call elfCheckpoint and
// elfRestore at their format-dispatch point. The dispatch below is what they should do:
//
//	checkpoint: format := chooseCheckpointFormat(--format, --ckpt-format, container annotation);
//	            elf → elfCheckpoint(conf, c, --image-path, --leave-running); gvisor → upstream.
//	restore:    --image-path "-" or isELFCheckpointDir(--image-path) → elfRestore(...); else upstream.

// ckptFormatFlag is the global --ckpt-format (registerFormatFlag).
var ckptFormatFlag string

// registerFormatFlag registers the global flag --ckpt-format on fs.
func registerFormatFlag(fs *flag.FlagSet) {
	fs.StringVar(&ckptFormatFlag, "ckpt-format", "", "format of `checkpoint`: elf (one ELF image per process, docs/tree-format.md) or gvisor (upstream's state file); default: the container's annotation "+formatAnnotation+", else gvisor")
}

// treeCheckpoint is upstream's checkpoint with --format.
type treeCheckpoint struct {
	cmd.Checkpoint
	format string
}

// SetFlags implements subcommands.Command.
func (c *treeCheckpoint) SetFlags(f *flag.FlagSet) {
	c.Checkpoint.SetFlags(f)
	f.StringVar(&c.format, "format", "", "checkpoint format: elf or gvisor (default: --ckpt-format, the annotation "+formatAnnotation+", else gvisor)")
}

// Execute implements subcommands.Command.
func (c *treeCheckpoint) Execute(ctx context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	if f.NArg() != 1 {
		return c.Checkpoint.Execute(ctx, f, args...)
	}
	conf := args[0].(*config.Config)
	cont, err := container.Load(conf.RootDir, container.FullID{ContainerID: f.Arg(0)}, container.LoadOpts{})
	if err != nil {
		util.Fatalf("loading container: %v", err)
	}
	format, err := chooseCheckpointFormat(c.format, ckptFormatFlag, cont)
	if err != nil {
		util.Fatalf("%v", err)
	}
	if format != formatELF {
		return c.Checkpoint.Execute(ctx, f, args...)
	}
	image := f.Lookup("image-path").Value.String()
	if image == "" {
		util.Fatalf("image-path flag must be provided")
	}
	if err := elfCheckpoint(conf, cont, image, f.Lookup("leave-running").Value.String() == "true"); err != nil {
		util.Fatalf("%v", err)
	}
	return subcommands.ExitSuccess
}

// treeRestore is upstream's restore that recognises ELF checkpoints.
type treeRestore struct {
	cmd.Restore
}

// Execute implements subcommands.Command.
func (r *treeRestore) Execute(ctx context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	image := f.Lookup("image-path").Value.String()
	if f.NArg() != 1 || (image != "-" && !isELFCheckpointDir(image)) {
		return r.Restore.Execute(ctx, f, args...)
	}
	conf := args[0].(*config.Config)
	self, err := os.Executable()
	if err != nil {
		util.Fatalf("%v", err)
	}
	ga, _ := parseGlobalArgs(os.Args[1:])
	globals := os.Args[1 : len(os.Args)-len(ga.subArgs)-1]
	code, err := elfRestore(conf, elfRestoreArgs{
		self: self, globals: globals, id: f.Arg(0),
		bundle:  f.Lookup("bundle").Value.String(),
		image:   image,
		detach:  f.Lookup("detach").Value.String() == "true",
		pidFile: f.Lookup("pid-file").Value.String(),
	})
	if err != nil {
		util.Fatalf("%v", err)
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "runsc-ckpt restore: container exited with status %d\n", code)
		os.Exit(code)
	}
	return subcommands.ExitSuccess
}
