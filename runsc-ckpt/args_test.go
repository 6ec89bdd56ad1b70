package main

import (
	"reflect"
	"testing"
)

func TestParseGlobalArgs(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		sub     string
		subArgs []string
		given   []string
		version bool
	}{
		{args: []string{"--root", "/r", "--debug", "do", "-cwd=/x", "prog", "--root=y"}, sub: "do",
			subArgs: []string{"-cwd=/x", "prog", "--root=y"}, given: []string{"root", "debug"}},
		{args: []string{"--systrap-disable-syscall-patching=false", "run", "id"}, sub: "run",
			subArgs: []string{"id"}, given: []string{patchingFlag}},
		{args: []string{"--platform=ptrace", "--version"}, version: true, given: []string{"platform", "version"}},
		{args: []string{"--log-fd", "3", "boot", "--spec-fd=7", "cid"}, sub: "boot",
			subArgs: []string{"--spec-fd=7", "cid"}, given: []string{"log-fd"}},
	} {
		ga, ok := parseGlobalArgs(tc.args)
		if !ok {
			t.Errorf("parseGlobalArgs(%q) failed", tc.args)
			continue
		}
		sameArgs := len(ga.subArgs) == len(tc.subArgs) && (len(tc.subArgs) == 0 || reflect.DeepEqual(ga.subArgs, tc.subArgs))
		if ga.subcommand != tc.sub || !sameArgs || ga.version != tc.version {
			t.Errorf("parseGlobalArgs(%q) = %+v", tc.args, ga)
		}
		for _, g := range tc.given {
			if !ga.given[g] {
				t.Errorf("parseGlobalArgs(%q): %s not marked as given", tc.args, g)
			}
		}
		if len(ga.given) != len(tc.given) {
			t.Errorf("parseGlobalArgs(%q): given = %v, want %v", tc.args, ga.given, tc.given)
		}
	}
	if _, ok := parseGlobalArgs([]string{"--no-such-flag", "do"}); ok {
		t.Error("an unknown flag parsed")
	}
}

func TestWithPatchingDisabled(t *testing.T) {
	args := []string{"--root=/r", "do", "prog"}
	ga, _ := parseGlobalArgs(args)
	got := withPatchingDisabled(args, ga)
	want := append([]string{"--systrap-disable-syscall-patching=true"}, args...)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("withPatchingDisabled = %q, want %q", got, want)
	}
	// An explicit choice stands, whichever way.
	for _, v := range []string{"--systrap-disable-syscall-patching=false", "-systrap-disable-syscall-patching"} {
		args := []string{v, "do", "prog"}
		ga, _ := parseGlobalArgs(args)
		if got := withPatchingDisabled(args, ga); !reflect.DeepEqual(got, args) {
			t.Errorf("withPatchingDisabled(%q) = %q, want it unchanged", args, got)
		}
	}
}
