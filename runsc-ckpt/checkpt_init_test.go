package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestCheckptRunsBeforeGVisorInit (issue 13 item 3): started as checkpt, this binary (here the
// test binary, which links the same packages) runs the tool from package early's initialiser and
// exits before gVisor's host-facing packages initialise. GODEBUG=inittrace=1 makes the runtime
// print a line for every package initialiser that ran. Go initialises a package as soon as its
// imports are, in import path order, so gVisor packages with few imports (generated protobuf and
// state registrations, lock classes) still come first; those on the list below were read and touch
// no host state. pkg/sentry/platform (reads /proc/sys/vm/mmap_min_addr, panics without /proc) must
// never be among them. If a gVisor bump or a new import adds a package here, read its init
// functions: add it only if they touch nothing outside the process.
func TestCheckptRunsBeforeGVisorInit(t *testing.T) {
	if os.Getenv(initTraceChild) != "" {
		// checkpt did not take over the re-executed test binary, which runs the tests instead:
		// stop here rather than re-executing again.
		os.Exit(3)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "checkpt", "-h")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1", initTraceChild+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s checkpt -h: %v\n%s", exe, err, out)
	}
	if !strings.Contains(string(out), "usage: checkpt -r IMAGE|-") {
		t.Fatalf("checkpt -h did not print its usage:\n%s", out)
	}
	if !strings.Contains(string(out), "init ") {
		t.Fatalf("no inittrace output (GODEBUG=inittrace=1 ignored?):\n%s", out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || f[0] != "init" || !strings.HasPrefix(f[1], "gvisor.dev/gvisor/") {
			continue
		}
		pkg := strings.TrimPrefix(f[1], "gvisor.dev/gvisor/")
		if !strings.HasSuffix(pkg, "_go_proto") && !harmlessEarlyInit[pkg] {
			t.Errorf("gVisor package %s initialised before checkpt ran (see the comment)", f[1])
		}
	}
}

// initTraceChild marks the re-executed test binary of TestCheckptRunsBeforeGVisorInit.
const initTraceChild = "RUNSC_CKPT_INITTRACE_CHILD"

// harmlessEarlyInit are gVisor packages (below gvisor.dev/gvisor/) whose initialisers may run
// before checkpt's: type registrations for pkg/state, lock classes, tables. None reads a file.
var harmlessEarlyInit = map[string]bool{
	"pkg/abi/tpu": true, "pkg/abi/nvgpu": true, "pkg/binary": true, "pkg/state": true,
	"pkg/state/statefile": true, "pkg/sentry/checkpoint": true, "pkg/sync": true,
	"pkg/sync/locking": true, "pkg/atomicbitops": true, "pkg/sleep": true, "pkg/waiter": true,
	"pkg/bitmap": true, "pkg/errors/linuxerr": true, "pkg/hostarch": true, "pkg/prometheus": true,
	"pkg/sentry/usage": true, "pkg/tcpip/link/stopfd": true, "runsc/flag": true, "pkg/rand": true,
	"pkg/sentry/socket/netlink/port": true,
}
