package main

import (
	"context"
	"fmt"
	"os"

	"github.com/google/subcommands"
	"gvisor.dev/gvisor/runsc/cmd"
	"gvisor.dev/gvisor/runsc/cmd/util"
	"gvisor.dev/gvisor/runsc/config"
	"gvisor.dev/gvisor/runsc/flag"
)

// restoreCommand is upstream's restore with every flag runc's restore has (criu_flags.go),
// including runc's short forms -b (--bundle) and -d (--detach).
type restoreCommand struct {
	cmd.Restore
	criu criuFlags
	// verifyDigests makes an ELF restore check every image's digest (CRC-32C or SHA-256, as the
	// manifest records it) against the manifest
	// before anything runs (tree_restore.go).
	verifyDigests bool
	// clock is --restore-clock: what an ELF restore does with CLOCK_MONOTONIC
	// (tree_restore_clock.go).
	clock string
}

// Usage implements subcommands.Command.Usage.
func (*restoreCommand) Usage() string {
	return `restore [flags] <container id> - restore saved state of container.

Creates the container from its bundle (-b/--bundle) if it does not exist, and restores the
sandbox saved by checkpoint in --image-path. The runc/CRIU flags engines pass (--work-path,
--no-subreaper, --file-locks, --tcp-established, ...) are accepted; what each means under gVisor
is in its help line below and in docs/engines.md.

`
}

// SetFlags implements subcommands.Command.SetFlags.
func (r *restoreCommand) SetFlags(f *flag.FlagSet) {
	r.Restore.SetFlags(f)
	r.criu.register(f, forRestore)
	f.BoolVar(&r.verifyDigests, "verify-digests", false, "ELF checkpoints: check every image's digest (CRC-32C or SHA-256, as the manifest names it) against the manifest before restoring (reads all image bytes; without it only sizes and structure are checked, and restore time does not grow with the image)")
	f.StringVar(&r.clock, "restore-clock", "", "ELF checkpoints: CLOCK_MONOTONIC and boot time (/proc/uptime, btime) of the restored container: continue (from the checkpoint's, plus the time since; about +0.4-0.6 s per restore) or reset (the new sandbox's: the clock and uptime near 0); default: --ckpt-restore-clock, the bundle's annotation "+restoreClockAnnotation+", else continue")
	for short, long := range map[string]string{"b": "bundle", "d": "detach"} {
		if l := f.Lookup(long); l != nil && f.Lookup(short) == nil {
			f.Var(l.Value, short, "same as --"+long)
		}
	}
}

// Execute implements subcommands.Command.Execute.
func (r *restoreCommand) Execute(ctx context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	if err := r.criu.check(); err != nil {
		util.Fatalf("restore: %v", err)
	}
	// A bad --restore-clock or --ckpt-restore-clock is a usage error (exit 2) before anything
	// is looked at.
	if _, err := chooseRestoreClock(r.clock, ckptRestoreClockFlag, nil); err != nil {
		fmt.Fprintf(os.Stderr, "restore: %v\n", err)
		return subcommands.ExitUsageError
	}
	if r.criu.lazyPages {
		// runc's lazy restore pages memory in on demand; gVisor's counterpart loads the image in
		// the background after the restore has returned.
		if err := f.Set("background", "true"); err != nil {
			util.Fatalf("restore --lazy-pages: %v", err)
		}
	}
	if !globalFlagGiven(restoreSpecValidationFlag) {
		conf := args[0].(*config.Config)
		conf.RestoreSpecValidation = config.RestoreSpecValidationWarning
	}
	// The format is detected: an ELF tree checkpoint (a directory with its manifest, or a
	// stream on stdin) is restored by elfRestore (tree_restore.go), anything else by upstream.
	image := f.Lookup("image-path").Value.String()
	if f.NArg() != 1 || (image != "-" && !isELFCheckpointDir(image)) {
		return r.Restore.Execute(ctx, f, args...)
	}
	self, err := os.Executable()
	if err != nil {
		util.Fatalf("restore: %v", err)
	}
	ga, _ := parseGlobalArgs(os.Args[1:])
	globals := os.Args[1 : len(os.Args)-len(ga.subArgs)-1]
	code, err := elfRestore(args[0].(*config.Config), elfRestoreArgs{
		self: self, globals: globals, id: f.Arg(0),
		bundle:  f.Lookup("bundle").Value.String(),
		image:   image,
		detach:  f.Lookup("detach").Value.String() == "true",
		pidFile: f.Lookup("pid-file").Value.String(),
		verify:  r.verifyDigests,
		clock:   r.clock,
		// Upstream's restore has create's flags: a terminal container's engine passes
		// --console-socket and waits for the new pty's master on it (tree_restore_console.go).
		consoleSocket: f.Lookup("console-socket").Value.String(),
	})
	if err != nil {
		util.Fatalf("restore: %v", err)
	}
	if code != 0 {
		fmt.Fprintf(os.Stderr, "runsc-ckpt restore: container exited with status %d\n", code)
		os.Exit(code)
	}
	return subcommands.ExitSuccess
}

// restoreSpecValidationFlag is runsc's global flag that says what restore does when the
// container's spec differs from the checkpointed one.
const restoreSpecValidationFlag = "restore-spec-validation"

// Engines regenerate a container's spec when they restore it, and not always identically: Podman
// writes the bind mounts of a container restored from an exported checkpoint (restore --import)
// with propagation "private" where the checkpointed spec had "rprivate", and upstream's default
// check (enforce) then refuses the restore ("Mounts does not match across checkpoint restore").
// So restore checks with "warning" (differences go to the debug log) unless
// --restore-spec-validation is given.

// globalFlagGiven tells whether the global flag name was set on the command line.
func globalFlagGiven(name string) bool {
	given := false
	flag.CommandLine.Visit(func(f *flag.Flag) {
		if f.Name == name {
			given = true
		}
	})
	return given
}
