package test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// upstreamCommands are the commands and help topics of upstream runsc (runsc/cli/maincli at the
// pinned gVisor version) as `--help` names them.
var upstreamCommands = []string{
	"bwrap", "checkpoint", "create", "delete", "do", "events", "exec", "flags", "fscheckpoint", "help",
	"kill", "list", "pause", "port-forward", "ps", "read", "restore", "resume", "run", "sandboxexec",
	"spec", "start", "state", "tar", "update", "wait", "debug", "profile", "read-control", "statefile",
	"symbolize", "usage", "write-control", "cpu-features", "features", "install", "mitigate", "nvproxy",
	"trace", "uninstall", "boot", "gofer", "umount", "export-metrics", "metric-metadata",
	"metric-server", "platforms", "syscalls",
}

// ourCommands are runsc-ckpt's own commands.
var ourCommands = []string{"checkpt", "inspect", "squash"}

// TestVersionAndHelp checks that the binary says what it is and lists upstream's commands.
func TestVersionAndHelp(t *testing.T) {
	s := h.NewSandbox(t, harness.Opts{})
	v := s.MustRun(t, "--version").Stdout
	for _, re := range []string{`(?m)^runsc-ckpt version \d+\.\d+\.\d+`, `(?m)^gVisor runsc gvisor\.dev/gvisor v0\.0\.0-20260905035102-160fafc42237$`, `(?m)^spec: \d`} {
		if !regexp.MustCompile(re).MatchString(v) {
			t.Errorf("--version output does not match %s:\n%s", re, v)
		}
	}
	help := s.MustRun(t, "--help").Stdout
	for _, cmd := range append(upstreamCommands, ourCommands...) {
		if !regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(cmd) + `\s`).MatchString(help) {
			t.Errorf("--help does not list %q:\n%s", cmd, help)
		}
	}
	flags := s.MustRun(t, "flags").Stdout + s.Run(t, "flags").Stderr
	for _, f := range []string{"ckpt-file", "ckpt-group", "ckpt-signal", "systrap-disable-syscall-patching"} {
		if !strings.Contains(flags, "-"+f) {
			t.Errorf("`flags` does not list -%s", f)
		}
	}
	// The syscall table the sentry uses is the one `help syscalls` prints.
	sys := s.MustRun(t, "help", "syscalls").Stdout
	if !regexp.MustCompile(`1000\s+sys_checkpoint`).MatchString(sys) {
		t.Errorf("help syscalls does not list 1000 sys_checkpoint")
	}
}

// TestHelpAndUsageErrors checks that every command answers --help, -h and `help CMD` with its
// usage and exit code 0 (engines probe runtimes with `checkpoint --help`), and that a usage error
// (an unknown command or flag, a missing argument or container ID) says what is wrong and exits
// 2. runsc-ckpt/cli_test.go has the same for every command's flags and container ID.
func TestHelpAndUsageErrors(t *testing.T) {
	s := h.NewSandbox(t, harness.Opts{})
	topics := map[string]bool{"help": true, "flags": true, "platforms": true, "syscalls": true}
	for _, cmd := range append(upstreamCommands, ourCommands...) {
		if topics[cmd] {
			continue
		}
		for _, args := range [][]string{{cmd, "--help"}, {cmd, "-h"}, {"help", cmd}} {
			r := s.Run(t, args...)
			if r.ExitCode != 0 || strings.TrimSpace(r.Stdout) == "" {
				t.Errorf("want exit 0 and the usage of %s:\n%s", cmd, r)
			}
		}
	}
	for _, cmd := range []string{"checkpoint", "restore", "inspect"} {
		if r := s.Run(t, cmd, "--help"); !strings.HasPrefix(r.Stdout, "Usage: runsc-ckpt "+cmd+" ") {
			t.Errorf("want the usage of %s on stdout:\n%s", cmd, r)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"help", "bogus"}, `unknown command "bogus"`},
		{[]string{"checkpoint", "--no-such-flag", "id"}, "flag provided but not defined: -no-such-flag"},
		{[]string{"--no-such-global-flag", "list"}, "flag provided but not defined: -no-such-global-flag"},
		{[]string{"inspect"}, "Validates IMAGE"}, // a usage error found by the command itself
		{[]string{"squash", "one"}, "want IMAGE and OUT, got 1 arguments"},
		{[]string{"kill"}, "runsc-ckpt kill: a container ID is required"},
		{[]string{"checkpoint", "--image-path=x"}, "runsc-ckpt checkpoint: a container ID is required"},
		{[]string{"checkpt", "--bogus"}, `checkpt: unknown argument "--bogus"`},
		{[]string{"checkpt", "-r"}, "checkpt: -r needs an argument"},
	} {
		r := s.Run(t, tc.args...)
		if r.ExitCode != 2 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("want exit 2 and %q on stderr:\n%s", tc.want, r)
		}
	}
}

// TestSpecCommand checks `spec` writes a usable config.json.
func TestSpecCommand(t *testing.T) {
	s := h.NewSandbox(t, harness.Opts{})
	bundle := filepath.Join(s.Dir, "specbundle")
	if err := os.MkdirAll(bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	s.MustRun(t, "spec", "-bundle="+bundle, "--", "/bin/echo", "hi")
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Process struct{ Args []string } `json:"process"`
		Root    struct{ Path string }   `json:"root"`
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatalf("config.json: %v\n%s", err, b)
	}
	if strings.Join(spec.Process.Args, " ") != "/bin/echo hi" || spec.Root.Path == "" {
		t.Errorf("config.json: args %q root %q", spec.Process.Args, spec.Root.Path)
	}
}

// TestRunDetachedStatePsKill exercises run -detach, state, ps, kill and delete on a sleeping guest.
func TestRunDetachedStatePsKill(t *testing.T) {
	guest := h.BuildC(t, "sleeper")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		c := h.Bundle(t, harness.BundleOpts{Opts: harness.Opts{Platform: p}, Args: []string{guest, "300"}})
		c.RunDetached(t)
		c.WaitForOutput(t, "ready ")
		st := c.State(t)
		if st.Status != "running" || st.ID != c.ID || st.Pid <= 0 {
			t.Errorf("state = %+v, want running %s with a pid", st, c.ID)
		}
		if ps := c.PS(t); !strings.Contains(ps, filepath.Base(guest)) {
			t.Errorf("ps does not show %s:\n%s", filepath.Base(guest), ps)
		}
		c.Kill(t, "KILL")
		if code := c.Wait(t); code != 128+9 && code != 9 {
			// runsc reports a signal death as the raw wait status (9) or shell style (137).
			t.Errorf("wait after KILL: %d", code)
		}
		if st := c.State(t); st.Status != "stopped" {
			t.Errorf("state after kill = %+v, want stopped", st)
		}
		c.Delete(t, false)
		if ids := c.Containers(t); len(ids) != 0 {
			t.Errorf("containers left after delete: %v", ids)
		}
	})
}

// TestInstall checks that install registers the binary in a Docker daemon.json as runtime
// runsc-ckpt, with the arguments after -- as its runtimeArgs and the file's other settings kept,
// and that uninstall removes it again.
func TestInstall(t *testing.T) {
	s := h.NewSandbox(t, harness.Opts{})
	cfg := filepath.Join(s.Dir, "daemon.json")
	if err := os.WriteFile(cfg, []byte(`{"debug": true, "runtimes": {"other": {"path": "/bin/other"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	s.MustRun(t, "install", "--config_file="+cfg, "--", "--ckpt-file=/ckpt/%N.ckpt", "--platform=ptrace")
	var c struct {
		Debug    bool `json:"debug"`
		Runtimes map[string]struct {
			Path        string   `json:"path"`
			RuntimeArgs []string `json:"runtimeArgs"`
		} `json:"runtimes"`
	}
	read := func() {
		c.Runtimes = nil
		b, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatalf("%s: %v\n%s", cfg, err, b)
		}
	}
	read()
	rt, ok := c.Runtimes["runsc-ckpt"]
	if !ok || rt.Path != h.Bin || strings.Join(rt.RuntimeArgs, " ") != "--ckpt-file=/ckpt/%N.ckpt --platform=ptrace" {
		t.Errorf("runtime runsc-ckpt = %+v (present %v), want path %s and the args after --", rt, ok, h.Bin)
	}
	if _, ok := c.Runtimes["other"]; !ok || !c.Debug || len(c.Runtimes) != 2 {
		t.Errorf("install changed the file's other settings: %+v", c)
	}
	s.MustRun(t, "uninstall", "--config_file="+cfg)
	read()
	if _, ok := c.Runtimes["runsc-ckpt"]; ok || len(c.Runtimes) != 1 {
		t.Errorf("after uninstall the runtimes are %+v", c.Runtimes)
	}
}
