package test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/test/harness"
)

// ckptCase is one sys_checkpoint call made by the ckpt_call guest (see its header for the
// symbols) and the errno it must fail with ("OK" for success).
type ckptCase struct {
	name     string
	typ      int
	fd, pid  string
	retval   int
	prep     string // none, nodump, nocore, nobody
	abi      string // int, zext, junk
	wantErrn string
}

// arg formats c for ckpt_call's command line.
func (c ckptCase) arg() string {
	return fmt.Sprintf("%s,%d,%s,%s,%d,%s,%s", c.name, c.typ, c.fd, c.pid, c.retval, c.prep, c.abi)
}

// Expected results of freeze and thaw calls whose arguments are valid: a freeze succeeds (the
// image itself is checked by the freeze tests), a thaw of a file that is not an image is EINVAL.
const (
	validFreeze      = "OK"
	thawOfNonImage   = "EINVAL"
	thawOfEmptyImage = "EINVAL"
)

// syscallCases are docs/abi.md's argument checks, one call each.
var syscallCases = []ckptCase{
	// Unknown types.
	{"type_0", 0, "-1", "-1", 0, "none", "int", "EOPNOTSUPP"},
	{"type_5", 5, "-1", "-1", 0, "none", "int", "EOPNOTSUPP"},
	// The tree types (runsc-ckpt's extension, docs/tree-format.md): bad arguments.
	{"freeze_tree_pid_m1", 3, "wo", "-1", 0, "none", "int", "EINVAL"},
	{"freeze_tree_fd_rdonly", 3, "ro", "self", 0, "none", "int", "EBADF"},
	{"freeze_tree_bad_flags", 3, "wo", "self", 4, "none", "int", "EINVAL"},
	{"thaw_tree_fd_closed", 4, "closed", "-1", 0, "none", "int", "EBADF"},
	{"thaw_tree_not_a_dir", 4, "ro", "-1", 0, "none", "int", "ENOTDIR"},
	{"thaw_tree_pid_not_m1", 4, "ro", "self", 0, "none", "int", "EINVAL"},
	// CKPT_FREEZE_INCR (docs/incremental.md): the fourth argument is the parent image's fd.
	{"freeze_incr_parent_closed", 8, "wo", "-1", 999, "none", "int", "EBADF"},
	{"freeze_incr_parent_not_image", 8, "wo", "-1", 0, "none", "int", "EINVAL"},
	{"type_m1", -1, "-1", "-1", 0, "none", "int", "EOPNOTSUPP"},
	{"type_99_junk_high_bits", 99, "-1", "-1", 0, "none", "junk", "EOPNOTSUPP"},

	// FREEZE with valid arguments.
	{"freeze_to_ckpt_file", 1, "-1", "-1", 0, "none", "int", validFreeze},
	{"freeze_fd_wronly", 1, "wo", "-1", 0, "none", "int", validFreeze},
	{"freeze_fd_rdwr", 1, "rw", "-1", 0, "none", "int", validFreeze},
	{"freeze_own_pid", 1, "wo", "self", 0, "none", "int", validFreeze},
	{"freeze_traceable_other_pid", 1, "wo", "parent", 0, "none", "int", validFreeze},
	// int arguments are 32 bits: -1 zero-extended is still -1, and high junk is ignored.
	{"freeze_to_ckpt_file_zext", 1, "-1", "-1", 0, "none", "zext", validFreeze},
	{"freeze_fd_wronly_junk_high_bits", 1, "wo", "-1", 0, "none", "junk", validFreeze},

	// FREEZE: bad fd.
	{"freeze_fd_rdonly", 1, "ro", "-1", 0, "none", "int", "EBADF"},
	{"freeze_fd_opath", 1, "path", "-1", 0, "none", "int", "EBADF"},
	{"freeze_fd_closed", 1, "closed", "-1", 0, "none", "int", "EBADF"},
	{"freeze_fd_m2", 1, "-2", "-1", 0, "none", "int", "EBADF"},
	{"freeze_fd_m1_with_own_pid", 1, "-1", "self", 0, "none", "int", "EBADF"},

	// FREEZE: bad pid.
	{"freeze_pid_missing", 1, "wo", "missing", 0, "none", "int", "ESRCH"},
	{"freeze_pid_0", 1, "wo", "0", 0, "none", "int", "EINVAL"},
	{"freeze_pid_m2", 1, "wo", "-2", 0, "none", "int", "EINVAL"},
	{"freeze_untraceable_pid", 1, "wo", "parent", 0, "nobody", "int", "EPERM"},

	// FREEZE: process state.
	{"freeze_not_dumpable", 1, "wo", "-1", 0, "nodump", "int", "EPERM"},
	{"freeze_rlimit_core_0", 1, "wo", "-1", 0, "nocore", "int", "ERANGE"},

	// THAW.
	{"thaw_not_an_image", 2, "ro", "-1", 1, "none", "int", thawOfNonImage},
	{"thaw_empty_rdwr", 2, "rw", "-1", 1, "none", "int", thawOfEmptyImage},
	{"thaw_own_pid", 2, "ro", "self", 1, "none", "int", "EINVAL"},
	{"thaw_pid_m2", 2, "ro", "-2", 1, "none", "int", "EINVAL"},
	{"thaw_fd_wronly", 2, "wo", "-1", 1, "none", "int", "EBADF"},
	{"thaw_fd_opath", 2, "path", "-1", 1, "none", "int", "EBADF"},
	{"thaw_fd_closed", 2, "closed", "-1", 1, "none", "int", "EBADF"},
	{"thaw_fd_m1", 2, "-1", "-1", 1, "none", "int", "EBADF"},
}

var caseLine = regexp.MustCompile(`(?m)^case (\S+) ret=(-?\d+) errno=(\S+)$`)

// runCases runs cases in one ckpt_call guest and returns name → errno name.
func runCases(t *testing.T, r *harness.Result, cases []ckptCase) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, m := range caseLine.FindAllStringSubmatch(r.Stdout, -1) {
		got[m[1]] = m[3]
	}
	if len(got) != len(cases) {
		t.Errorf("ckpt_call reported %d of %d cases:\n%s", len(got), len(cases), r)
	}
	return got
}

func ckptCallArgs(guest string, cases []ckptCase) []string {
	argv := []string{guest}
	for _, c := range cases {
		argv = append(argv, c.arg())
	}
	return argv
}

// TestSyscallArgumentErrors makes every call in syscallCases from a guest and checks its errno.
// Without the syscall registered every case would fail with ENOSYS.
func TestSyscallArgumentErrors(t *testing.T) {
	guest := h.BuildC(t, "ckpt_call")
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		r := h.Do(t, harness.Opts{Platform: p}, ckptCallArgs(guest, syscallCases)...)
		r.WantExit(t, 0)
		got := runCases(t, r, syscallCases)
		for _, c := range syscallCases {
			if got[c.name] != c.wantErrn {
				t.Errorf("case %s (%s): got %q, want %s", c.name, c.arg(), got[c.name], c.wantErrn)
			}
		}
	})
}

// policyCases are calls whose result depends on the ckpt-group policy.
var policyCases = []ckptCase{
	{"bad_type", 99, "-1", "-1", 0, "none", "int", "EOPNOTSUPP"},
	{"freeze", 1, "wo", "-1", 0, "none", "int", validFreeze},
	{"thaw", 2, "ro", "-1", 1, "none", "int", thawOfNonImage},
}

// TestPolicyGroup checks --ckpt-group (the guest runs as root, gid 0) given as a global flag to
// `do` and as an annotation of an OCI bundle: a group the caller is not in gets EPERM for every
// call, before any other check.
func TestPolicyGroup(t *testing.T) {
	guest := h.BuildC(t, "ckpt_call")
	want := func(allowed bool) map[string]string {
		m := map[string]string{}
		for _, c := range policyCases {
			m[c.name] = c.wantErrn
			if !allowed {
				m[c.name] = "EPERM"
			}
		}
		return m
	}
	check := func(t *testing.T, r *harness.Result, allowed bool) {
		t.Helper()
		got := runCases(t, r, policyCases)
		for name, w := range want(allowed) {
			if got[name] != w {
				t.Errorf("case %s: got %q, want %s\n%s", name, got[name], w, r)
			}
		}
	}
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		t.Run("flag_other_group", func(t *testing.T) {
			r := h.Do(t, harness.Opts{Platform: p, Flags: []string{"--ckpt-group=4242"}}, ckptCallArgs(guest, policyCases)...)
			r.WantExit(t, 0)
			check(t, r, false)
		})
		t.Run("flag_own_group", func(t *testing.T) {
			r := h.Do(t, harness.Opts{Platform: p, Flags: []string{"--ckpt-group=0"}}, ckptCallArgs(guest, policyCases)...)
			r.WantExit(t, 0)
			check(t, r, true)
		})
		// inBundle runs the cases as an OCI container started by create+start, or by run -detach.
		inBundle := func(t *testing.T, flags []string, annotations map[string]string, runDetached, allowed bool) {
			t.Helper()
			c := h.Bundle(t, harness.BundleOpts{
				Opts:        harness.Opts{Platform: p, Flags: flags},
				Args:        ckptCallArgs(guest, policyCases),
				Annotations: annotations,
			})
			if runDetached {
				c.RunDetached(t)
			} else {
				c.Create(t)
				c.Start(t)
			}
			if code := c.Wait(t); code != 0 {
				t.Errorf("guest exit status %d", code)
			}
			check(t, &harness.Result{Stdout: c.GuestStdout(), Stderr: c.GuestStderr()}, allowed)
		}
		t.Run("annotation_other_group", func(t *testing.T) {
			inBundle(t, nil, map[string]string{"dev.runsc-ckpt.ckpt-group": "4242"}, false, false)
		})
		// create and run start the sandbox from the bundle's config.json, not from the spec
		// runsc holds in memory: the flag must still reach the sentry.
		t.Run("flag_other_group_create", func(t *testing.T) {
			inBundle(t, []string{"--ckpt-group=4242"}, nil, false, false)
		})
		t.Run("flag_other_group_run", func(t *testing.T) {
			inBundle(t, []string{"--ckpt-group=4242"}, nil, true, false)
		})
		t.Run("annotation_beats_flag", func(t *testing.T) {
			inBundle(t, []string{"--ckpt-group=4242"}, map[string]string{"dev.runsc-ckpt.ckpt-group": "-1"}, true, true)
		})
	})
}

// TestPolicyValidation checks that bad policy values are refused with a message naming the problem
// before any sandbox starts.
func TestPolicyValidation(t *testing.T) {
	guest := h.BuildC(t, "hello")
	for _, tc := range []struct {
		flag, msg string
	}{
		{"--ckpt-signal=9", "SIGKILL cannot be caught"},
		{"--ckpt-signal=65", "not a signal number"},
		{"--ckpt-signal=sixty", "not a signal number"},
		{"--ckpt-signal=" + sigckptExitArg, "reserved for SIGCKPTEXIT"},
		{"--ckpt-group=-2", "must be a gid"},
		{"--ckpt-group=wheel", "not a number"},
		{"--ckpt-file=", "empty file name template"},
		{"--ckpt-file=%Q.img", "unknown directive %Q"},
		{"--ckpt-file=x%", "lone %"},
	} {
		t.Run(strings.TrimPrefix(tc.flag, "--"), func(t *testing.T) {
			r := h.Do(t, harness.Opts{Flags: []string{tc.flag}}, guest, "0")
			if r.ExitCode == 0 || !strings.Contains(r.Stderr, tc.msg) || strings.Contains(r.Stdout, "hello from the sandbox") {
				t.Errorf("want failure mentioning %q before the guest runs, got:\n%s", tc.msg, r)
			}
		})
	}
	t.Run("bad_annotation", func(t *testing.T) {
		c := h.Bundle(t, harness.BundleOpts{Args: []string{guest, "0"}, Annotations: map[string]string{"dev.runsc-ckpt.ckpt-signl": sigckptArg}})
		r := c.Run(t, "create", "-bundle="+c.Bundle, c.ID)
		if r.ExitCode == 0 || !strings.Contains(r.Stderr, `unknown annotation "dev.runsc-ckpt.ckpt-signl"`) {
			t.Errorf("want create to fail on the misspelt annotation, got:\n%s", r)
		}
	})
}

// TestTreeFreezePreSnapshotNeedsPermission: before a tree freeze stops anything it takes a
// throw-away snapshot of each process (freeze_tree_presnap.go). A caller that may not trace a
// process gets EPERM from the freeze, and that process must not have been pre-snapshotted
// first (copy-on-write faults and stub processes for it, at another user's request). The
// allowed call shows that the log line this looks for is written.
func TestTreeFreezePreSnapshotNeedsPermission(t *testing.T) {
	guest := h.BuildC(t, "ckpt_call")
	preSnap := regexp.MustCompile(`pre-snapshot of pid \d+: fork`)
	h.ForEachPlatform(t, func(t *testing.T, p string) {
		for _, c := range []ckptCase{
			{"freeze_tree_traceable_sibling", 3, "wo", "sibling", 0, "none", "int", validFreeze},
			{"freeze_tree_untraceable_sibling", 3, "wo", "sibling", 0, "nobody", "int", "EPERM"},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := h.Do(t, harness.Opts{Platform: p}, ckptCallArgs(guest, []ckptCase{c})...)
				r.WantExit(t, 0)
				if got := runCases(t, r, []ckptCase{c})[c.name]; got != c.wantErrn {
					t.Fatalf("%s: got %q, want %s", c.name, got, c.wantErrn)
				}
				snapped := preSnap.MatchString(r.Sandbox.DebugLogs(t))
				if want := c.wantErrn == validFreeze; snapped != want {
					t.Errorf("%s: a pre-snapshot in the sandbox log: %v, want %v", c.name, snapped, want)
				}
			})
		}
	})
}
