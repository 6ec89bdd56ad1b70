package main

import (
	"io"

	"gvisor.dev/gvisor/runsc/config"
	"gvisor.dev/gvisor/runsc/flag"
)

// patchingFlag is runsc's flag that turns systrap's syscall patching off; runsc-ckpt turns it on by
// default (docs/syscall-patching.md).
const patchingFlag = "systrap-disable-syscall-patching"

// globalArgs is what runsc-ckpt needs to know about its command line before handing it to runsc's
// CLI: which subcommand runs, with which arguments, and which global flags were given.
type globalArgs struct {
	subcommand string
	subArgs    []string
	given      map[string]bool
	version    bool
	help       bool
	rootDir    string // --root
	err        error  // why the command line did not parse (ok false)
}

// parseGlobalArgs parses args (without argv[0]) the way cli.Run will: with runsc's config flags and
// every flag already in flag.CommandLine, plus help/h/version, which cli.Run adds itself. Values
// are parsed into throwaway copies, so nothing cli.Run parses later is touched. ok is false if the
// command line does not parse; cli.Run then reports the error.
func parseGlobalArgs(args []string) (ga globalArgs, ok bool) {
	fs := flag.NewFlagSet("runsc-ckpt", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	config.RegisterFlags(fs)
	flag.CommandLine.VisitAll(func(f *flag.Flag) {
		if fs.Lookup(f.Name) != nil {
			return
		}
		if b, isBool := f.Value.(interface{ IsBoolFlag() bool }); isBool && b.IsBoolFlag() {
			fs.Bool(f.Name, false, "")
		} else {
			fs.String(f.Name, "", "")
		}
	})
	for _, name := range []string{"help", "h", "version"} {
		if fs.Lookup(name) == nil {
			fs.Bool(name, false, "")
		}
	}
	if err := fs.Parse(args); err != nil {
		return globalArgs{err: err}, false
	}
	ga.given = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { ga.given[f.Name] = true })
	ga.version = ga.given["version"] && fs.Lookup("version").Value.String() == "true"
	ga.help = (ga.given["help"] && fs.Lookup("help").Value.String() == "true") ||
		(ga.given["h"] && fs.Lookup("h").Value.String() == "true")
	ga.rootDir = fs.Lookup("root").Value.String()
	if fs.NArg() > 0 {
		ga.subcommand = fs.Arg(0)
		ga.subArgs = fs.Args()[1:]
	}
	return ga, true
}

// withPatchingDisabled returns args with --systrap-disable-syscall-patching=true in front, unless
// the flag was given explicitly (then the user's choice stands).
func withPatchingDisabled(args []string, ga globalArgs) []string {
	if ga.given[patchingFlag] {
		return args
	}
	out := make([]string, 0, len(args)+1)
	out = append(out, "--"+patchingFlag+"=true")
	return append(out, args...)
}
