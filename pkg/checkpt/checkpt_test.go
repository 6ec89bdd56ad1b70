package checkpt

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// These run outside a sandbox: only the paths that fail before or without sys_checkpoint. The
// thaw and freeze themselves are tested in test/thaw_test.go.

// TestCheckptUsage: every bad command line exits 2 (checkptUsage) with a line that says what is
// wrong, then the usage.
func TestCheckptUsage(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		reason string
	}{
		{nil, "nothing to do: give -r IMAGE or -c PID"},
		{[]string{"-r"}, "-r needs an argument"},
		{[]string{"-c"}, "-c needs an argument"},
		{[]string{"-c", "1", "--parent"}, "--parent needs an argument"},
		{[]string{"-o", "x"}, "nothing to do"},
		{[]string{"-r", "img", "-c", "1"}, "-r (thaw) and -c (freeze) do not go together"},
		{[]string{"-r", "img", "-o", "x"}, "-o and --parent go with -c, not with -r"},
		{[]string{"-x"}, `unknown argument "-x"`},
		{[]string{"--bogus"}, `unknown argument "--bogus"`},
		{[]string{"img"}, `unknown argument "img"`},
		{[]string{"-c", "-t"}, "-t needs an argument"},
		{[]string{"-c", "-t", "1", "-x"}, `unknown argument "-x"`},
		{[]string{"-t", "1"}, "give one of -c (freeze) and -r (restore)"},
		{[]string{"-c", "-r", "-t", "1"}, "give one of -c (freeze) and -r (restore)"},
		{[]string{"-c", "-t", "1"}, "a tree freeze needs -o DIR"},
		{[]string{"-c", "-t", "x", "-o", "d"}, `"x" is not a process id`},
		{[]string{"-r", "-t", "d", "-k"}, "a tree restore takes only -t DIR"},
		{[]string{"-c", "-t", "0", "-o", "d", "--digest", "md5"}, `digest "md5": want crc32c or sha256`},
		{[]string{"-c", "-t", "0", "-o", "d", "--digest"}, "--digest needs an argument"},
		{[]string{"-r", "-t", "d", "--digest", "sha256"}, "a tree restore takes only -t DIR"},
	} {
		var stderr bytes.Buffer
		if code := checkptMain(tc.args, os.Stdin, &stderr); code != checkptUsage {
			t.Errorf("checkpt %q: exit %d, want %d", tc.args, code, checkptUsage)
		}
		msg := stderr.String()
		if !strings.HasPrefix(msg, "checkpt: "+tc.reason) || !strings.Contains(msg, "usage: checkpt -r IMAGE|-") {
			t.Errorf("checkpt %q: message %q, want \"checkpt: %s...\" and the usage", tc.args, msg, tc.reason)
		}
	}
	var stderr bytes.Buffer
	if code := checkptMain([]string{"-h"}, os.Stdin, &stderr); code != 0 {
		t.Errorf("checkpt -h: exit %d", code)
	}
}

func TestCheckptFailures(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		msg  string
	}{
		{[]string{"-r", filepath.Join(dir, "missing.ckpt")}, "checkpt: thaw of " + filepath.Join(dir, "missing.ckpt") + " failed: open "},
		{[]string{"-c", "abc"}, `checkpt: freeze of process abc failed: "abc" is not a process id`},
		{[]string{"-c", "0"}, `checkpt: freeze of process 0 failed: "0" is not a process id`},
		{[]string{"-c", "1", "-o", filepath.Join(dir, "no", "such", "dir")}, "checkpt: freeze of process 1 failed: open "},
	} {
		var stderr bytes.Buffer
		if code := checkptMain(c.args, os.Stdin, &stderr); code != checkptFailed {
			t.Errorf("checkpt %q: exit %d, want %d", c.args, code, checkptFailed)
		}
		if !strings.HasPrefix(stderr.String(), c.msg) {
			t.Errorf("checkpt %q: message %q, want prefix %q", c.args, stderr.String(), c.msg)
		}
	}
}

func TestCheckptDispatch(t *testing.T) {
	for _, c := range []struct {
		args []string
		ran  bool
	}{
		{[]string{"/usr/local/bin/checkpt", "-h"}, true},
		{[]string{"checkpt", "-h"}, true},
		{[]string{"/bin/runsc-ckpt", "checkpt", "-h"}, true},
		{[]string{"/bin/runsc-ckpt", "do", "checkpt"}, false},
		{[]string{"/bin/runsc-ckpt"}, false},
		{[]string{"/bin/checkpt-not"}, false},
	} {
		code, ran := checkptDispatch(c.args)
		if ran != c.ran || (ran && code != 0) {
			t.Errorf("checkptDispatch(%q) = %d, %t; want ran=%t with exit 0", c.args, code, ran, c.ran)
		}
	}
}
