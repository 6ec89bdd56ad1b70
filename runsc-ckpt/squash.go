package main

import (
	"context"
	"fmt"
	"os"

	"github.com/google/subcommands"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treeincr"
	"gvisor.dev/gvisor/runsc/cmd/util"
	"gvisor.dev/gvisor/runsc/config"
	"gvisor.dev/gvisor/runsc/flag"
)

// Squash is `runsc-ckpt squash IMAGE OUT`: it writes the complete image a chain of incremental
// images stands for (docs/incremental.md), so that the chain's older images can be deleted.
type Squash struct{}

// Name implements subcommands.Command.
func (*Squash) Name() string { return "squash" }

// Synopsis implements subcommands.Command.
func (*Squash) Synopsis() string {
	return "merge an incremental checkpoint image and its parents into one complete image"
}

// Usage implements subcommands.Command.
func (*Squash) Usage() string {
	return "squash IMAGE OUT\nsquash DIR OUTDIR\n\nIMAGE is an incremental image (checkpt -c PID -o IMAGE --parent OLD); its parents are found\n" +
		"where it recorded them, or next to it under the same name, and must be unchanged. OUT receives the\n" +
		"complete image: it thaws exactly as IMAGE does and needs no parent.\n" +
		"DIR is an incremental container checkpoint (checkpoint --parent-path); OUTDIR (new) receives the\n" +
		"complete checkpoint: it restores exactly as DIR does and needs none of its parents.\n"
}

// SetFlags implements subcommands.Command.
func (*Squash) SetFlags(*flag.FlagSet) {}

// FetchSpec implements util.SubCommand.FetchSpec: squash targets no container.
func (*Squash) FetchSpec(*config.Config, *flag.FlagSet) (string, *specs.Spec, error) {
	return "", nil, nil
}

// Execute implements subcommands.Command.
func (*Squash) Execute(_ context.Context, f *flag.FlagSet, _ ...any) subcommands.ExitStatus {
	if f.NArg() != 2 {
		fmt.Fprintf(os.Stderr, "squash: want IMAGE and OUT, got %d arguments\n\n", f.NArg())
		f.Usage()
		return subcommands.ExitUsageError
	}
	if fi, err := os.Stat(f.Arg(0)); err == nil && fi.IsDir() {
		// A tree checkpoint directory (docs/incremental.md, "Container checkpoints").
		if err := treeincr.SquashDir(f.Arg(0), f.Arg(1)); err != nil {
			return util.Errorf("squash: %v", err)
		}
		fmt.Printf("squashed %s into %s\n", f.Arg(0), f.Arg(1))
		return subcommands.ExitSuccess
	}
	if err := squash(f.Arg(0), f.Arg(1)); err != nil {
		return util.Errorf("squash: %v", err)
	}
	return subcommands.ExitSuccess
}

// squash writes the complete image of the chain at in to out (a new file; removed on failure).
func squash(in, out string) error {
	c, err := imgfmt.OpenChainFiles(in)
	if err != nil {
		return err
	}
	defer c.Close()
	p, err := c.Squash()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := imgfmt.Encode(f, p); err != nil {
		f.Close()
		os.Remove(out)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(out)
		return err
	}
	fmt.Printf("squashed %d images into %s\n", len(c.Images), out)
	return nil
}
