package main

import (
	"bytes"
	"strings"
	"testing"

	"gvisor.dev/gvisor/runsc/cmd/util"
	"gvisor.dev/gvisor/runsc/flag"
)

func TestPreflight(t *testing.T) {
	pf := registerPolicyFlags(flag.NewFlagSet("test", flag.ContinueOnError))
	for _, tc := range []struct {
		args    []string
		handled bool
		code    int
		stdout  string // substring wanted in stdout
		stderr  string // substring wanted in stderr
	}{
		{args: []string{"checkpoint", "--help"}, handled: true, code: 0, stdout: "Usage: runsc-ckpt checkpoint"},
		{args: []string{"restore", "-h"}, handled: true, code: 0, stdout: "-image-path"},
		{args: []string{"inspect", "-help"}, handled: true, code: 0, stdout: "Usage: runsc-ckpt inspect"},
		{args: []string{"--root=/x", "kill", "--help"}, handled: true, code: 0, stdout: "SIGCKPT"},
		{args: []string{"help", "checkpoint"}, handled: true, code: 0, stdout: "Usage: runsc-ckpt checkpoint"},
		{args: []string{"bogus"}, handled: true, code: 2, stderr: `unknown command "bogus"`},
		{args: []string{"help", "bogus"}, handled: true, code: 2, stderr: `unknown command "bogus"`},
		{args: []string{}, handled: true, code: 2, stderr: "no command given"},
		{args: []string{"--no-such-flag", "run"}, handled: true, code: 2, stderr: "flag provided but not defined: -no-such-flag"},
		{args: []string{"state", "--no-such-flag", "id"}, handled: true, code: 2, stderr: "runsc-ckpt state: flag provided but not defined: -no-such-flag"},
		{args: []string{"install", "--runtime"}, handled: true, code: 2, stderr: "flag needs an argument: -runtime"},
		// Left to cli.Run.
		{args: []string{"--help"}},
		{args: []string{"--version"}},
		{args: []string{"help"}},
		{args: []string{"help", "platforms"}},
		{args: []string{"flags"}},
		{args: []string{"state", "id"}},
		{args: []string{"exec", "id", "ls", "-h"}},      // -h belongs to the guest's command
		{args: []string{"boot", "--no-such-boot-flag"}}, // internal: left to cli.Run
		{args: []string{"boot", "--help"}, handled: true, code: 0, stdout: "Usage: runsc-ckpt boot"},
	} {
		cmds, topics := commands(pf)
		var out, errb bytes.Buffer
		code, handled := preflight(tc.args, cmds, topics, &out, &errb)
		if handled != tc.handled || code != tc.code {
			t.Errorf("preflight(%q) = %d, %v; want %d, %v\nstdout: %s\nstderr: %s", tc.args, code, handled, tc.code, tc.handled, &out, &errb)
			continue
		}
		if !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errb.String(), tc.stderr) {
			t.Errorf("preflight(%q): stdout %q (want %q), stderr %q (want %q)", tc.args, &out, tc.stdout, &errb, tc.stderr)
		}
		if !tc.handled && out.Len()+errb.Len() > 0 {
			t.Errorf("preflight(%q) wrote output but left the command line to cli.Run", tc.args)
		}
	}
}

// TestUsageErrorsOfEveryCommand: every command (bar the internal ones runsc starts itself) answers
// a flag it does not define, and each command that works on a container answers a missing
// container ID, with exit code 2, a line naming the command and the reason, and its usage.
// Commands that need no ID go on to cli.Run with no arguments (only their flags are parsed here).
// Nothing is executed: install, uninstall and mitigate change the host when run with no arguments.
func TestUsageErrorsOfEveryCommand(t *testing.T) {
	needID := map[string]bool{
		"checkpoint": true, "create": true, "debug": true, "delete": true, "events": true, "exec": true,
		"export-metrics": true, "fscheckpoint": true, "kill": true, "pause": true, "port-forward": true,
		"ps": true, "read": true, "read-control": true, "restore": true, "resume": true, "run": true,
		"start": true, "state": true, "update": true, "usage": true, "wait": true, "write-control": true,
	}
	pf := registerPolicyFlags(flag.NewFlagSet("test", flag.ContinueOnError))
	probe, _ := commands(pf)
	seen := map[string]bool{}
	for c := range probe {
		name := c.Name()
		seen[name] = true
		_, internal := c.(util.InternalCommand)
		for _, tc := range []struct {
			args    []string
			handled bool
			reason  string
		}{
			{[]string{name, "--no-such-flag"}, !internal, "flag provided but not defined: -no-such-flag"},
			{[]string{name}, needID[name], "a container ID is required"},
		} {
			cmds, topics := commands(pf)
			var out, errb bytes.Buffer
			code, handled := preflight(tc.args, cmds, topics, &out, &errb)
			switch {
			case handled != tc.handled:
				t.Errorf("preflight(%q): handled %v, want %v\nstderr: %s", tc.args, handled, tc.handled, &errb)
			case !handled:
				if out.Len()+errb.Len() > 0 {
					t.Errorf("preflight(%q) wrote output but left the command line to cli.Run", tc.args)
				}
			case code != exitUsage || out.Len() != 0:
				t.Errorf("preflight(%q) = %d with stdout %q, want %d and nothing on stdout", tc.args, code, &out, exitUsage)
			case !strings.HasPrefix(errb.String(), "runsc-ckpt "+name+": "+tc.reason+"\n") || !strings.Contains(errb.String(), name):
				t.Errorf("preflight(%q): stderr %q, want \"runsc-ckpt %s: %s\" and the usage", tc.args, &errb, name, tc.reason)
			}
		}
	}
	for name := range needID {
		if !seen[name] {
			t.Errorf("no command %q: the table is out of date", name)
		}
	}
}
