// Package test holds runsc-ckpt's integration tests: real guest programs (test/guests) run under
// the real runsc-ckpt binary, on every platform in $RUNSC_CKPT_PLATFORMS (default systrap and
// ptrace). The machinery lives in test/harness; test/README.md describes it.
package test

import (
	"os"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// h is the harness shared by every test in this package.
var h *harness.H

func TestMain(m *testing.M) { os.Exit(harness.Main(m, &h)) }
