package main

import (
	"context"
	"os"
	"strings"
	"syscall"

	"github.com/google/subcommands"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/checkpt"
	"gvisor.dev/gvisor/runsc/cmd/util"
	"gvisor.dev/gvisor/runsc/flag"
)

// The guest tool checkpt is package pkg/checkpt; package pkg/checkpt/early (imported by main.go)
// runs it from an initialiser, before gVisor's packages initialise, when this binary is started
// as checkpt.

// describeTreeErrno explains the tree types' errors (checkpt's words).
func describeTreeErrno(e syscall.Errno) error { return checkpt.DescribeTreeErrno(e) }

// Checkpt is `runsc-ckpt checkpt`, listed in runsc-ckpt's help. The command line never reaches it:
// package early runs checkpt before anything else.
type Checkpt struct {
	util.InternalSubCommand
}

// Name implements subcommands.Command.
func (*Checkpt) Name() string { return "checkpt" }

// Synopsis implements subcommands.Command.
func (*Checkpt) Synopsis() string {
	return "guest tool: thaw an image in place (-r IMAGE) or freeze a process (-c PID [-o FILE])"
}

// Usage implements subcommands.Command.
func (*Checkpt) Usage() string {
	return strings.ReplaceAll(checkpt.UsageText, "checkpt ", "runsc-ckpt checkpt ") +
		"\nRun inside a runsc-ckpt sandbox (also as a binary named checkpt). Example:\n" +
		"  checkpt -r /data/app.ckpt     # the program continues where it froze; exit 5 on failure\n"
}

// SetFlags implements subcommands.Command.
func (*Checkpt) SetFlags(*flag.FlagSet) {}

// Execute implements subcommands.Command.
func (*Checkpt) Execute(_ context.Context, f *flag.FlagSet, _ ...any) subcommands.ExitStatus {
	return subcommands.ExitStatus(checkpt.Main(f.Args(), os.Stdin, os.Stderr))
}
