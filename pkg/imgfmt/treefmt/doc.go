// Package treefmt is the on-disk and on-the-wire form of a process-tree checkpoint: a directory
// holding one ELF image per process (pkg/imgfmt's format, each thawable alone) and a versioned JSON
// manifest (manifest.json) that ties them together, and a single-stream form of the same directory
// (a tar-like record stream with holes) that the sentry writes into any file descriptor and that
// a host command splits back into a directory. docs/tree-format.md is the specification.
//
// Like pkg/imgfmt it does not import gVisor: the sentry, the guest tool and the host commands all
// use it.
package treefmt
