package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/runsc/flag"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/sentry/ckpt"
)

func newPolicyFlags(t *testing.T, args ...string) *policyFlags {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	pf := registerPolicyFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parsing %q: %v", args, err)
	}
	return pf
}

func TestPolicyFlagsValidate(t *testing.T) {
	for _, bad := range [][]string{{"--ckpt-signal=9"}, {"--ckpt-signal=x"}, {"--ckpt-group=-5"}, {"--ckpt-file=%Z"}} {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(nilWriter{})
		registerPolicyFlags(fs)
		if err := fs.Parse(bad); err == nil {
			t.Errorf("parsing %q succeeded", bad)
		}
	}
}

type nilWriter struct{}

func (nilWriter) Write(b []byte) (int, error) { return len(b), nil }

func TestApplyToOnlyGivenFlags(t *testing.T) {
	pf := newPolicyFlags(t, "--ckpt-group=7")
	spec := &specs.Spec{}
	if err := pf.applyTo(spec); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{ckpt.AnnotationGroup: "7"}
	if len(spec.Annotations) != 1 || spec.Annotations[ckpt.AnnotationGroup] != "7" {
		t.Errorf("annotations = %v, want %v", spec.Annotations, want)
	}
	// No flags: the spec is left alone.
	spec = &specs.Spec{}
	if err := newPolicyFlags(t).applyTo(spec); err != nil || spec.Annotations != nil {
		t.Errorf("applyTo without flags: %v, annotations %v", err, spec.Annotations)
	}
}

func TestApplyToAnnotationWins(t *testing.T) {
	pf := newPolicyFlags(t, "--ckpt-group=7", "--ckpt-signal=40", "--ckpt-file=a%P")
	spec := &specs.Spec{Annotations: map[string]string{ckpt.AnnotationGroup: "-1", "other": "x"}}
	if err := pf.applyTo(spec); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{ckpt.AnnotationGroup: "-1", ckpt.AnnotationSignal: "40", ckpt.AnnotationFile: "a%P", "other": "x"}
	for k, v := range want {
		if spec.Annotations[k] != v {
			t.Errorf("annotation %s = %q, want %q", k, spec.Annotations[k], v)
		}
	}
	// A bad annotation in the user's spec is reported.
	spec = &specs.Spec{Annotations: map[string]string{ckpt.AnnotationSignal: "9"}}
	if err := newPolicyFlags(t).applyTo(spec); err == nil {
		t.Error("applyTo accepted ckpt-signal 9 in the spec")
	}
}

func TestSpecFD(t *testing.T) {
	for args, want := range map[string]int{"--bundle=/b --spec-fd=10 cid": 10, "-spec-fd 7 cid": 7} {
		got, err := specFD(splitArgs(args))
		if err != nil || got != want {
			t.Errorf("specFD(%q) = %d, %v; want %d", args, got, err, want)
		}
	}
	for _, args := range []string{"--bundle=/b cid", "--spec-fd=x cid", "--spec-fd=-1", "--spec-fd"} {
		if _, err := specFD(splitArgs(args)); err == nil {
			t.Errorf("specFD(%q) succeeded", args)
		}
	}
}

func splitArgs(s string) []string { return strings.Fields(s) }

// TestPreadAllKeepsOffset checks that reading the spec in boot leaves the fd's offset where boot
// expects it and reads from the start whatever the offset.
func TestPreadAllKeepsOffset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	data := []byte(`{"annotations":{"dev.runsc-ckpt.ckpt-group":"12"}}`)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(path, unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := unix.Seek(fd, 5, 0); err != nil {
		t.Fatal(err)
	}
	got, err := preadAll(fd)
	if err != nil || string(got) != string(data) {
		t.Fatalf("preadAll = %q, %v", got, err)
	}
	if off, _ := unix.Seek(fd, 0, 1); off != 5 {
		t.Errorf("offset after preadAll = %d, want 5", off)
	}
	// The boot path's reading of the spec, twice: the fd's offset is untouched, so a second read
	// (runsc's own, after ours) sees the same spec. Installing it (ckpt.SetPolicy, once per
	// process) is tested in pkg/sentry/ckpt; this test sets no process-wide state, so it passes
	// under -count=N and in any order.
	for i := 0; i < 2; i++ {
		p, err := bootPolicy([]string{"--spec-fd=" + strconv.Itoa(fd), "cid"})
		if err != nil {
			t.Fatal(err)
		}
		if p.Group != 12 || p.File != ckpt.DefaultFile {
			t.Errorf("policy from the boot spec = %+v, want group 12 and the default file", p)
		}
	}
	if off, _ := unix.Seek(fd, 0, 1); off != 5 {
		t.Errorf("offset after bootPolicy = %d, want 5", off)
	}
}
