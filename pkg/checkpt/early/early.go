// Package early runs the guest tool checkpt from a package initialiser, before gVisor's packages
// initialise, when the runsc-ckpt binary is started as checkpt (argv[0] "checkpt" or the first
// argument "checkpt"). Only runsc-ckpt's main package imports it.
//
// Why: runsc-ckpt is the sentry too, and some of gVisor's packages read host files when they
// initialise (pkg/sentry/platform reads /proc/sys/vm/mmap_min_addr and panics without it). Inside
// a sandbox without /proc, checkpt died there before main ran. Go initialises packages in the
// order of their import paths, each after the packages it imports (the Go spec, "Package
// initialization", since Go 1.21): this package and everything it imports (the standard library,
// pkg/checkpt, pkg/imgfmt/treefmt) sort before gvisor.dev/..., so its init runs first and exits.
// TestCheckptRunsBeforeGVisorInit checks that with GODEBUG=inittrace=1.
package early

import (
	"os"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/checkpt"
)

func init() {
	if code, ok := checkpt.Dispatch(os.Args); ok {
		os.Exit(code)
	}
}
