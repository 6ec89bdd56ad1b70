// Package ckpt is runsc-ckpt's sentry glue: it adds the guest syscall sys_checkpoint (number
// SYS_checkpoint) to gVisor's amd64 syscall table, validates its arguments against the sandbox's
// checkpoint Policy, and hands a validated request to freeze (capture a process into an image) or
// thaw (replace the calling process with an image).
//
// It is the only package of the project that imports gVisor's sentry. Data flows one way:
// guest syscall or signal → this package captures state from gVisor objects into plain Go structs →
// pkg/imgfmt encodes them → file; thaw is the mirror image. The package registers itself in an init
// function, so linking it into the runsc-ckpt binary (which re-executes itself as the sentry,
// `runsc-ckpt boot`) is enough to make the syscall available to every guest.
//
// The guest ABI (numbers, errnos) is fixed by docs/abi.md and mirrored in include/ckpt.h.
package ckpt
