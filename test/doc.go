// Package test holds runsc-ckpt's integration tests: real guest programs (test/guests) run under
// the real runsc-ckpt binary, in real sandboxes, on every platform in $RUNSC_CKPT_PLATFORMS
// (default systrap and ptrace). The machinery lives in test/harness; test/README.md describes it.
// The package has no code of its own outside its _test.go files.
package test
