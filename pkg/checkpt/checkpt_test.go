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

func TestCheckptUsage(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"-r"},
		{"-c"},
		{"-o", "x"},
		{"-r", "img", "-c", "1"},
		{"-r", "img", "-o", "x"},
		{"-x"},
		{"img"},
	} {
		var stderr bytes.Buffer
		if code := checkptMain(args, os.Stdin, &stderr); code != checkptUsage {
			t.Errorf("checkpt %q: exit %d, want %d", args, code, checkptUsage)
		}
		if !strings.Contains(stderr.String(), "usage: checkpt -r IMAGE|-") {
			t.Errorf("checkpt %q: no usage message: %q", args, stderr.String())
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
