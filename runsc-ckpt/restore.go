package main

import (
	"context"

	"github.com/google/subcommands"
	"gvisor.dev/gvisor/runsc/cmd"
	"gvisor.dev/gvisor/runsc/cmd/util"
	"gvisor.dev/gvisor/runsc/config"
	"gvisor.dev/gvisor/runsc/flag"
)

// restoreFormat tells which format the image directory imagePath holds. This is where restore
// dispatches on the format (the counterpart of checkpointFormat); today every image is
// upstream's.
func restoreFormat(imagePath string) containerFormat {
	_ = imagePath
	return formatUpstream
}

// restoreCommand is upstream's restore with every flag runc's restore has (criu_flags.go),
// including runc's short forms -b (--bundle) and -d (--detach).
type restoreCommand struct {
	cmd.Restore
	criu criuFlags
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
	switch format := restoreFormat(f.Lookup("image-path").Value.String()); format {
	case formatUpstream:
		return r.Restore.Execute(ctx, f, args...)
	default:
		util.Fatalf("restore: image format %q is not supported", format)
		return subcommands.ExitFailure
	}
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
