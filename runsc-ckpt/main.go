// Command runsc-ckpt is gVisor's runsc (every upstream subcommand and flag) with per-process
// checkpointing linked into its sentry: the guest syscall sys_checkpoint (1000) freezes a process
// into an ELF core image or thaws it in place, and SIGCKPT writes an image. It adds global flags
// --ckpt-file, --ckpt-group and --ckpt-signal (the checkpoint policy) and its own subcommands.
//
// The same binary is the sentry: runsc re-executes /proc/self/exe as `runsc-ckpt boot`, so the
// init of pkg/sentry/ckpt registers the syscall in the sandbox kernel.
package main

import (
	"fmt"
	"os"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/checkpt"
	"gvisor.dev/gvisor/runsc/cli"
	"gvisor.dev/gvisor/runsc/cmd/alias"
	"gvisor.dev/gvisor/runsc/flag"

	// The guest tool checkpt runs from this package's init, before gVisor's packages initialise.
	_ "github.com/runsc-ckpt/runsc-ckpt/pkg/checkpt/early"

	// Linking the package registers sys_checkpoint in the sentry's syscall table (its init).
	_ "github.com/runsc-ckpt/runsc-ckpt/pkg/sentry/ckpt"

	// Upstream's maincli imports it too: it embeds the checkpoint gofer helper binary.
	_ "gvisor.dev/gvisor/runsc/gvisorbinaries/embed"
)

// noSidecarDir is where runsc looks for sidecar binaries (GVISOR_SIDECAR_BINARIES_DIR). It must not
// exist: an upstream gvisor-bin/gvisor_sentry found there or next to the binary would silently
// replace our sentry, and with it sys_checkpoint. Without a sidecar runsc runs /proc/self/exe.
const noSidecarDir = "/nonexistent/runsc-ckpt/no-sidecar-binaries"

func main() {
	if len(os.Args) > 1 && os.Args[1] == stdioHolderArg { // subcontainer_stdio.go
		os.Exit(stdioHolderMain(os.Args[2:]))
	}
	if err := os.Setenv("GVISOR_SIDECAR_BINARIES_DIR", noSidecarDir); err != nil {
		fmt.Fprintf(os.Stderr, "runsc-ckpt: %v\n", err)
		os.Exit(128)
	}
	alias.HandleAlias()

	pf := registerPolicyFlags(flag.CommandLine)
	registerFormatFlag(flag.CommandLine)       // tree_checkpoint.go: --ckpt-format
	registerDigestFlag(flag.CommandLine)       // tree_checkpoint_digest.go: --ckpt-digest
	registerRestoreClockFlag(flag.CommandLine) // tree_restore_clock.go: --ckpt-restore-clock
	// Help, unknown commands and bad flags are answered before anything else runs (cli.go), on instances of
	// the commands of their own.
	probe, probeTopics := commands(pf)
	if code, handled := preflight(os.Args[1:], probe, probeTopics, os.Stdout, os.Stderr); handled {
		os.Exit(code)
	}
	ga, ok := parseGlobalArgs(os.Args[1:])
	if ok {
		if ga.version {
			printVersion(os.Stdout)
			os.Exit(0)
		}
		if ga.subcommand == "checkpt" {
			// Only with global flags before it (package early runs `runsc-ckpt checkpt ...`):
			// checkpt takes none, and its arguments are its own, not flags for cli.Run to parse.
			os.Exit(checkpt.Main(ga.subArgs, os.Stdin, os.Stderr))
		}
		os.Args = append(os.Args[:1:1], withPatchingDisabled(os.Args[1:], ga)...)
		if ga.subcommand == "boot" {
			if err := installBootPolicy(ga.subArgs); err != nil {
				fmt.Fprintf(os.Stderr, "runsc-ckpt boot: %v\n", err)
				os.Exit(128)
			}
			if err := startKillChannel(ga.rootDir, ga.subArgs); err != nil {
				// Not fatal: `kill` then sends checkpoint signals through the signal helper.
				fmt.Fprintf(os.Stderr, "runsc-ckpt boot: %v\n", err)
			}
		}
	}

	cmds, helpCmds := commands(pf)
	cli.Run(nil, withUsageExit(cmds), helpCmds)
}
