package main

import (
	"fmt"
	"io"
	"runtime/debug"

	"gvisor.dev/gvisor/runsc/specutils"
)

// Version is runsc-ckpt's own version.
const Version = "0.1.0"

// gvisorModule is the module path of gVisor, whose runsc and sentry runsc-ckpt is built on.
const gvisorModule = "gvisor.dev/gvisor"

// printVersion writes what this binary is: runsc-ckpt's version (and VCS revision, if the build
// recorded one), the gVisor version it is built on, and the OCI spec version, in runc's format.
func printVersion(w io.Writer) {
	rev, gvisor := "", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		var commit, dirty string
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && len(s.Value) >= 12:
				commit = s.Value[:12]
			case s.Key == "vcs.modified" && s.Value == "true":
				dirty = ", modified"
			}
		}
		if commit != "" {
			rev = " (commit " + commit + dirty + ")"
		}
		for _, d := range bi.Deps {
			if d.Path == gvisorModule {
				gvisor = d.Version
				if d.Replace != nil {
					gvisor += " => " + d.Replace.Path + " " + d.Replace.Version
				}
			}
		}
	}
	fmt.Fprintf(w, "runsc-ckpt version %s%s\n", Version, rev)
	fmt.Fprintf(w, "gVisor runsc %s %s\n", gvisorModule, gvisor)
	fmt.Fprintf(w, "spec: %s\n", specutils.Version)
}
