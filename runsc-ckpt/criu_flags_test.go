package main

import (
	"golang.org/x/sys/unix"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gvisor.dev/gvisor/runsc/flag"
)

// The command lines engines run (docs/engines.md; logged by test/engines_test.go), after the
// subcommand name.
var (
	engineCheckpointArgs = [][]string{
		{"--image-path", "/d/checkpoint", "--work-path", "/d/work", "--file-locks", "--leave-running", "cid"},
		{"--image-path", "/d/img", "--work-path", "/d", "--tcp-established", "--ext-unix-sk", "--shell-job",
			"--empty-ns", "network", "--manage-cgroups-mode", "soft", "--parent-path", "../pre", "--auto-dedup", "cid"},
		{"--image-path", "/d/img", "--work-path", "/d", "--pre-dump", "cid"},
		{"--image-path", "/d/img", "--lazy-pages", "--status-fd", "3", "cid"},
	}
	engineRestoreArgs = [][]string{
		{"--image-path", "/d/checkpoint", "--work-path", "/d/work", "--detach", "--pid-file", "/d/pid",
			"-no-subreaper", "--bundle", "/b", "cid"},
		{"--bundle", "/b", "--pid-file", "/d/pid", "--detach", "--image-path", "/d/checkpoint",
			"--work-path", "/d", "--tcp-established", "--file-locks", "--lsm-profile", "apparmor:x",
			"--lsm-mount-context", "ctx", "--manage-cgroups-mode", "ignore", "cid"},
		{"-b", "/b", "-d", "--no-pivot", "--console-socket", "/s", "--ext-unix-sk", "--shell-job",
			"--empty-ns", "network", "--auto-dedup", "--lazy-pages", "--image-path", "/i", "cid"},
	}
)

func TestCheckpointRestoreAcceptRuncFlags(t *testing.T) {
	for _, args := range engineCheckpointArgs {
		c := new(checkpointCommand)
		fs := flag.NewFlagSet("checkpoint", flag.ContinueOnError)
		c.SetFlags(fs)
		if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
			t.Errorf("checkpoint %q: %v (%d arguments left)", args, err, fs.NArg())
			continue
		}
		if err := c.criu.check(); err != nil {
			t.Errorf("checkpoint %q: %v", args, err)
		}
	}
	for _, args := range engineRestoreArgs {
		r := new(restoreCommand)
		fs := flag.NewFlagSet("restore", flag.ContinueOnError)
		r.SetFlags(fs)
		if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
			t.Errorf("restore %q: %v (%d arguments left)", args, err, fs.NArg())
			continue
		}
		if err := r.criu.check(); err != nil {
			t.Errorf("restore %q: %v", args, err)
		}
	}
	// The short forms set the long flags.
	r := new(restoreCommand)
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	r.SetFlags(fs)
	if err := fs.Parse([]string{"-b", "/bundle", "-d", "cid"}); err != nil {
		t.Fatal(err)
	}
	if b, d := fs.Lookup("bundle").Value.String(), fs.Lookup("detach").Value.String(); b != "/bundle" || d != "true" {
		t.Errorf("-b /bundle -d: bundle %q detach %q", b, d)
	}
}

func TestCriuFlagsRejectWhatCannotBeDone(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--page-server", "h:1", "cid"}, "not supported"},
		{[]string{"--manage-cgroups-mode", "loose", "cid"}, "want soft, full, strict or ignore"},
		{[]string{"--empty-ns", "network,bogus", "cid"}, `"bogus": not a namespace name`},
	} {
		c := new(checkpointCommand)
		fs := flag.NewFlagSet("checkpoint", flag.ContinueOnError)
		c.SetFlags(fs)
		if err := fs.Parse(tc.args); err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if err := c.criu.check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
}

func TestStatusFDAndEngineFiles(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// signalStatusFD closes the fd it is given, as the engine expects. Give it a dup and close w
	// here: handing it w's own number left w's finalizer to close that number again later, when
	// another test's file had it (TestCommandsMatchUpstream failed in CI reading a module file:
	// "bad file descriptor").
	fd, err := unix.Dup(int(w.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	c := criuFlags{statusFD: fd}
	if err := c.signalStatusFD(); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 2)
	if n, _ := r.Read(b); n != 1 || b[0] != 0 {
		t.Errorf("status fd got %q, want one NUL", b[:n])
	}
	if n, err := r.Read(b); n != 0 || err == nil {
		t.Errorf("status fd not closed after the NUL: read %d, %v", n, err)
	}

	dir := t.TempDir()
	if err := writeEngineFiles(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, inventoryFile)); err != nil {
		t.Error(err)
	}
}

func TestStdioHolderSocket(t *testing.T) {
	a, b := stdioHolderSocket("/r", "c1"), stdioHolderSocket("/r", "c2")
	if a == b || a != stdioHolderSocket("/r", "c1") || !strings.HasPrefix(a, "@") || len(a) > 107 {
		t.Errorf("holder sockets %q, %q: want distinct, stable, abstract names", a, b)
	}
	// Without a holder, start runs with its own stdio (as upstream's).
	if files, ok, err := fetchCreateStdio(t.TempDir(), "none"); ok || err != nil || files != nil {
		t.Errorf("fetchCreateStdio without a holder = %v, %v, %v", files, ok, err)
	}
}
