package main

import (
	"context"
	"errors"
	goflag "flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/google/subcommands"
	"gvisor.dev/gvisor/runsc/cmd/util"
	"gvisor.dev/gvisor/runsc/config"
	"gvisor.dev/gvisor/runsc/flag"
)

// Exit codes of the command line itself (not of a container).
const (
	exitOK    = 0
	exitUsage = 2 // unknown command, bad flag, missing command: as flag.ExitOnError and runc
)

// How runsc-ckpt's command line reports help and usage errors
//
// Upstream's cli.Run parses a subcommand's flags itself (not through the subcommands package's
// wrapper that adds -h/-help), so `runsc checkpoint --help` fails with "flag: help requested"
// and exits 128, as does every bad flag; an unknown command prints the whole command list and
// exits 128 too. Engines probe a runtime this way (Podman runs `RUNTIME checkpoint --help` and
// refuses checkpointing if it fails), and 128 is what runsc returns when a container operation
// fails, so a caller cannot tell a usage error from a failure. preflight looks at the command
// line before cli.Run does and answers these cases itself, for every command alike:
//
//	CMD -h, CMD -help, CMD --help, help CMD   usage of CMD on stdout, exit 0
//	unknown CMD, help UNKNOWN                 "unknown command", exit 2
//	CMD with a flag it does not define        the flag error and CMD's usage on stderr, exit 2
//	CMD that takes a container ID, given none "a container ID is required" and CMD's usage, exit 2
//	no command at all                         "no command given", exit 2
//	a bad global flag                         the flag error on stderr, exit 2
//
// A command that finds its arguments wrong after parsing (upstream's commands return
// subcommands.ExitUsageError, e.g. `do` without a program) exits 2 as well (withUsageExit).
// Everything else goes to cli.Run unchanged. Of the internal commands (boot, gofer, umount:
// runsc starts them itself) only --help is answered here.

// preflight checks args (without argv[0]) against cmds and the help topics. It parses flags into
// cmds' instances, so cmds must be a set of throwaway instances, not the ones given to cli.Run.
// handled is true when the command line was answered here and the process should exit with code.
func preflight(args []string, cmds map[util.SubCommand]string, topics []subcommands.Command, stdout, stderr io.Writer) (code int, handled bool) {
	ga, ok := parseGlobalArgs(args)
	switch {
	case !ok:
		fmt.Fprintf(stderr, "runsc-ckpt: %v\nRun 'runsc-ckpt flags' for the global flags.\n", ga.err)
		return exitUsage, true
	case ga.help || ga.version:
		return 0, false
	case ga.subcommand == "":
		fmt.Fprintf(stderr, "runsc-ckpt: no command given\nRun 'runsc-ckpt help' for the list of commands.\n")
		return exitUsage, true
	case ga.subcommand == "flags":
		return 0, false
	case ga.subcommand == "help":
		return preflightHelp(ga.subArgs, cmds, topics, stdout, stderr)
	}
	c := findCommand(cmds, ga.subcommand)
	if c == nil {
		fmt.Fprintf(stderr, "runsc-ckpt: unknown command %q\nRun 'runsc-ckpt help' for the list of commands.\n", ga.subcommand)
		return exitUsage, true
	}
	_, internal := c.(util.InternalCommand)
	fs := flag.NewFlagSet(c.Name(), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.SetFlags(fs)
	err := fs.Parse(ga.subArgs)
	switch {
	case err == nil && !internal && missingContainerID(c, fs):
		fmt.Fprintf(stderr, "runsc-ckpt %s: a container ID is required\n", c.Name())
		explainCommand(stderr, c)
		return exitUsage, true
	case err == nil:
		return 0, false
	case errors.Is(err, goflag.ErrHelp):
		explainCommand(stdout, c)
		return exitOK, true
	case internal:
		return 0, false
	default:
		fmt.Fprintf(stderr, "runsc-ckpt %s: %v\n", c.Name(), err)
		explainCommand(stderr, c)
		return exitUsage, true
	}
}

// containerIDRequired matches the errors upstream's FetchSpec returns when a command that works
// on a container is given no container ID (runsc/cmd: cmd.go, create.go, run.go, restore.go,
// debug.go).
var containerIDRequired = regexp.MustCompile(`container[- ]id is required|container ID should be provided`)

// missingContainerID reports whether c, whose flags fs holds and which was given no arguments,
// needs a container ID: its usage names one, and its FetchSpec (which cli.Run calls before
// Execute, and which exits 128 on any error) refuses the empty command line for that reason.
// FetchSpec returns before touching the configuration when the ID is missing, so a zero Config
// stands in; any other outcome, a panic included, leaves the command line to cli.Run.
func missingContainerID(c util.SubCommand, fs *flag.FlagSet) (missing bool) {
	if fs.NArg() != 0 || !strings.Contains(strings.ToLower(c.Usage()), "container") {
		return false
	}
	defer func() {
		if recover() != nil {
			missing = false
		}
	}()
	_, _, err := c.FetchSpec(&config.Config{}, fs)
	return err != nil && containerIDRequired.MatchString(err.Error())
}

// preflightHelp answers `help CMD` as `CMD --help` does, and `help UNKNOWN`; `help` alone and the
// help topics (platforms, syscalls) go to upstream's help.
func preflightHelp(args []string, cmds map[util.SubCommand]string, topics []subcommands.Command, stdout, stderr io.Writer) (int, bool) {
	if len(args) == 0 {
		return 0, false
	}
	name := args[0]
	if c := findCommand(cmds, name); c != nil {
		explainCommand(stdout, c)
		return exitOK, true
	}
	if name == "help" || name == "flags" {
		return 0, false
	}
	for _, t := range topics {
		if t.Name() == name {
			return 0, false
		}
	}
	fmt.Fprintf(stderr, "runsc-ckpt help: unknown command %q\nRun 'runsc-ckpt help' for the list of commands.\n", name)
	return exitUsage, true
}

// findCommand returns the command of cmds called name, or nil.
func findCommand(cmds map[util.SubCommand]string, name string) util.SubCommand {
	for c := range cmds {
		if c.Name() == name {
			return c
		}
	}
	return nil
}

// explainCommand writes c's usage and flags to w, the usage line as "Usage: runsc-ckpt CMD ..."
// where c's own starts with its name.
func explainCommand(w io.Writer, c subcommands.Command) {
	usage := strings.TrimPrefix(c.Usage(), "Usage: ")
	if strings.HasPrefix(usage, c.Name()+" ") || strings.HasPrefix(usage, c.Name()+"\n") {
		usage = "Usage: runsc-ckpt " + usage
	}
	fmt.Fprint(w, usage)
	fs := flag.NewFlagSet(c.Name(), flag.ContinueOnError)
	fs.SetOutput(w)
	c.SetFlags(fs)
	fs.PrintDefaults()
}

// withUsageExit wraps every command of cmds except the internal ones so that a usage error it
// reports (subcommands.ExitUsageError; cli.Run would exit 128) ends the process with exit code 2.
func withUsageExit(cmds map[util.SubCommand]string) map[util.SubCommand]string {
	out := make(map[util.SubCommand]string, len(cmds))
	for c, group := range cmds {
		if _, internal := c.(util.InternalCommand); !internal {
			c = &usageExitCommand{SubCommand: c}
		}
		out[c] = group
	}
	return out
}

// usageExitCommand is a command whose usage errors exit 2 (withUsageExit).
type usageExitCommand struct {
	util.SubCommand
}

// Execute implements subcommands.Command.Execute.
func (c *usageExitCommand) Execute(ctx context.Context, f *flag.FlagSet, args ...any) subcommands.ExitStatus {
	st := c.SubCommand.Execute(ctx, f, args...)
	if st == subcommands.ExitUsageError {
		os.Exit(exitUsage)
	}
	return st
}
