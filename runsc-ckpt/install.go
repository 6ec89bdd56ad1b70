package main

import (
	"gvisor.dev/gvisor/runsc/cmd"
	"gvisor.dev/gvisor/runsc/flag"
)

// runtimeName is the name `install` registers runsc-ckpt under in Docker's daemon.json (and
// `uninstall` removes), as in `docker run --runtime=runsc-ckpt`.
const runtimeName = "runsc-ckpt"

// installCommand is upstream's install with runsc-ckpt's defaults: the runtime is called
// runsc-ckpt (upstream: runsc), and sidecar binaries are neither downloaded nor required
// (runsc-ckpt's sentry is in its own binary and it never runs a sidecar; main.go). Everything
// after `--` becomes the runtime's runtimeArgs, as upstream.
type installCommand struct {
	cmd.Install
}

// Usage implements subcommands.Command.Usage.
func (*installCommand) Usage() string {
	return `install [--runtime=<name>] [flags] [-- [args...]] - add runsc-ckpt to Docker's daemon.json.

Registers this binary as the Docker runtime <name> (default runsc-ckpt) in --config_file; args
after -- are given to it on every call (runtimeArgs), e.g. -- --ckpt-file=/ckpt/%N.%P.ckpt.
Restart dockerd afterwards; then docker run --runtime=runsc-ckpt ...

`
}

// SetFlags implements subcommands.Command.SetFlags.
func (i *installCommand) SetFlags(f *flag.FlagSet) {
	i.Install.SetFlags(f)
	setFlagDefault(f, "runtime", runtimeName)
	setFlagDefault(f, "download-sidecars", "NEVER")
	setFlagDefault(f, "require-sidecars", "NEVER")
}

// uninstallCommand is upstream's uninstall, removing the runtime runsc-ckpt by default.
type uninstallCommand struct {
	cmd.Uninstall
}

// Usage implements subcommands.Command.Usage.
func (*uninstallCommand) Usage() string {
	return "uninstall [--runtime=<name>] [flags] - remove runtime <name> (default runsc-ckpt) from Docker's daemon.json.\n"
}

// SetFlags implements subcommands.Command.SetFlags.
func (u *uninstallCommand) SetFlags(f *flag.FlagSet) {
	u.Uninstall.SetFlags(f)
	setFlagDefault(f, "runtime", runtimeName)
}

// setFlagDefault changes the default of f's flag name (value and help text) if f has it.
func setFlagDefault(f *flag.FlagSet, name, value string) {
	fl := f.Lookup(name)
	if fl == nil {
		return
	}
	if err := fl.Value.Set(value); err != nil {
		panic("default of --" + name + ": " + err.Error()) // a programming error
	}
	fl.DefValue = value
}
