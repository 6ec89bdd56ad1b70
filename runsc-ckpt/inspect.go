package main

import (
	"context"
	"fmt"
	"os"

	"github.com/google/subcommands"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/inspect"
	"gvisor.dev/gvisor/runsc/cmd/util"
	"gvisor.dev/gvisor/runsc/config"
	"gvisor.dev/gvisor/runsc/flag"
)

// Inspect is `runsc-ckpt inspect IMAGE [--json]`: a host-side summary of a checkpoint image (process,
// creds, threads, mappings, fds, signal dispositions, totals). The image is fully validated first, so
// inspect also tells whether an image is well-formed. The logic lives in package inspect.
type Inspect struct {
	json  bool
	chain bool
}

// Name implements subcommands.Command.
func (*Inspect) Name() string { return "inspect" }

// Synopsis implements subcommands.Command.
func (*Inspect) Synopsis() string { return "validate a checkpoint image and print what it holds" }

// Usage implements subcommands.Command.
func (*Inspect) Usage() string {
	return "inspect [--json] IMAGE|DIR\n\nDIR, a tree checkpoint (checkpt -c -t, checkpoint --format=elf), is verified (manifest, every\n" +
		"image's size and digest) and described: the process tree, each process, shared files and objects.\n\n" +
		"Validates IMAGE (an ELF core written by a freeze) and prints the process it holds:\n" +
		"name, pid, creds, threads with rip/rsp, mappings (range, perms, kind, bytes stored on disk, backing\n" +
		"file), fds, non-default signal dispositions and totals. Exits non-zero if IMAGE is malformed.\n\n" +
		"Example:\n  runsc-ckpt inspect /data/app.ckpt\n  runsc-ckpt inspect --json /data/app.ckpt | jq .threads\n\n"
}

// SetFlags implements subcommands.Command.
func (i *Inspect) SetFlags(f *flag.FlagSet) {
	f.BoolVar(&i.json, "json", false, "print the summary as JSON")
	f.BoolVar(&i.chain, "chain", false, "for an incremental image, open and check its parents and list the chain (inspect_chain.go)")
}

// FetchSpec implements util.SubCommand.FetchSpec: inspect targets no container.
func (*Inspect) FetchSpec(*config.Config, *flag.FlagSet) (string, *specs.Spec, error) {
	return "", nil, nil
}

// Execute implements subcommands.Command.
func (i *Inspect) Execute(_ context.Context, f *flag.FlagSet, _ ...any) subcommands.ExitStatus {
	if f.NArg() != 1 {
		fmt.Fprintf(os.Stderr, "inspect: want one IMAGE or DIR, got %d arguments\n\n", f.NArg())
		f.Usage()
		return subcommands.ExitUsageError
	}
	r, err := inspect.Path(f.Arg(0))
	if err != nil {
		return util.Errorf("inspect: %v", err)
	}
	if i.json {
		err = r.WriteJSON(os.Stdout)
	} else {
		err = r.WriteText(os.Stdout)
	}
	if err != nil {
		return util.Errorf("inspect: writing the summary: %v", err)
	}
	if i.chain {
		if err := printChain(os.Stdout, f.Arg(0)); err != nil {
			return util.Errorf("inspect: %v", err)
		}
	}
	return subcommands.ExitSuccess
}
