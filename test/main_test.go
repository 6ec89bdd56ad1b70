package test

import (
	"os"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// h is the harness shared by every test in this package.
var h *harness.H

func TestMain(m *testing.M) { os.Exit(harness.Main(m, &h)) }
