package ckpt

import (
	"strings"
	"testing"

	"gvisor.dev/gvisor/pkg/abi/linux"
)

func TestDefaultPolicyIsValid(t *testing.T) {
	p := DefaultPolicy()
	if err := p.Validate(); err != nil {
		t.Fatalf("DefaultPolicy().Validate() = %v", err)
	}
	if p.File != "%N.ckpt" || p.Group != -1 || p.Signal != 62 {
		t.Errorf("DefaultPolicy() = %+v, want docs/abi.md's %%N.ckpt, -1, 62", p)
	}
}

func TestValidateFileTemplate(t *testing.T) {
	for _, ok := range []string{"%N.ckpt", "x", "/abs/%P-%U-%N.img", "100%%", "%%%N"} {
		if err := ValidateFileTemplate(ok); err != nil {
			t.Errorf("ValidateFileTemplate(%q) = %v, want nil", ok, err)
		}
	}
	for tmpl, msg := range map[string]string{
		"":                         "empty",
		"a%":                       "lone %",
		"%Q":                       "unknown directive %Q",
		"a\x00b":                   "NUL",
		strings.Repeat("a", 4096):  "PATH_MAX",
		"%%%":                      "lone %",
		"ok-then-%x-directive.img": "unknown directive %x",
	} {
		err := ValidateFileTemplate(tmpl)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ValidateFileTemplate(%.20q) = %v, want an error containing %q", tmpl, err, msg)
		}
	}
}

func TestFileName(t *testing.T) {
	for tmpl, want := range map[string]string{
		"%N.ckpt":          "prog.ckpt",
		"%P-%U-%N":         "42-1000-prog",
		"100%%.%N":         "100%.prog",
		"dir/%N/%P.img":    "dir/prog/42.img",
		"plain":            "plain",
		"%%N is not a dir": "%N is not a dir",
	} {
		p := Policy{File: tmpl}
		if got := p.FileName("prog", 42, 1000); got != want {
			t.Errorf("FileName(%q) = %q, want %q", tmpl, got, want)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for s, want := range map[string]linux.Signal{"62": 62, " 10 ": 10, "0": 0, "64": 64, "1": 1} {
		got, err := ParseSignal(s)
		if err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for s, msg := range map[string]string{
		"9": "SIGKILL", "19": "SIGSTOP", "63": "SIGCKPTEXIT", "65": "not a signal number",
		"-1": "not a signal number", "SIGUSR1": "not a signal number", "": "not a signal number",
	} {
		if _, err := ParseSignal(s); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseSignal(%q) = %v, want an error containing %q", s, err, msg)
		}
	}
}

func TestParseGroup(t *testing.T) {
	for s, want := range map[string]int32{"-1": -1, "0": 0, "4242": 4242, "2147483647": 2147483647} {
		if got, err := ParseGroup(s); err != nil || got != want {
			t.Errorf("ParseGroup(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"-2", "wheel", "2147483648", "1.5", ""} {
		if _, err := ParseGroup(s); err == nil {
			t.Errorf("ParseGroup(%q) succeeded, want an error", s)
		}
	}
}

func TestWithAnnotations(t *testing.T) {
	p, err := DefaultPolicy().WithAnnotations(map[string]string{
		AnnotationFile:        "/ckpt/%P.img",
		AnnotationGroup:       "7",
		AnnotationSignal:      "40",
		AnnotationCorePattern: "core.%p",
		"dev.gvisor.whatever": "ignored",
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Policy{File: "/ckpt/%P.img", Group: 7, Signal: 40, Background: DefaultBackground, CorePattern: "core.%p"}); p != want {
		t.Errorf("WithAnnotations = %+v, want %+v", p, want)
	}
	// Round trip through Annotations.
	if q, err := DefaultPolicy().WithAnnotations(p.Annotations()); err != nil || q != p {
		t.Errorf("round trip = %+v, %v; want %+v", q, err, p)
	}
	for ann, msg := range map[string]string{
		"dev.runsc-ckpt.ckpt-signl": "unknown annotation",
		AnnotationSignal:            "SIGKILL",
		AnnotationGroup:             "not a number",
		AnnotationFile:              "unknown directive",
	} {
		val := map[string]string{AnnotationSignal: "9", AnnotationGroup: "x", AnnotationFile: "%z"}[ann]
		if _, err := DefaultPolicy().WithAnnotations(map[string]string{ann: val}); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("WithAnnotations(%s=%q) = %v, want an error containing %q", ann, val, err, msg)
		}
	}
}

func TestSetPolicyOnce(t *testing.T) {
	if installed.Load() != nil {
		t.Fatal("policy already installed before the test")
	}
	defer installed.Store(nil)
	if got := CurrentPolicy(); got != DefaultPolicy() {
		t.Errorf("CurrentPolicy() before SetPolicy = %+v, want the default", got)
	}
	if err := SetPolicy(Policy{File: "%Q"}); err == nil {
		t.Error("SetPolicy accepted an invalid policy")
	}
	p := Policy{File: "x.img", Group: 3, Signal: 10}
	if err := SetPolicy(p); err != nil {
		t.Fatal(err)
	}
	if got := CurrentPolicy(); got != p {
		t.Errorf("CurrentPolicy() = %+v, want %+v", got, p)
	}
	if err := SetPolicy(DefaultPolicy()); err == nil {
		t.Error("second SetPolicy succeeded")
	}
	if got := CurrentPolicy(); got != p {
		t.Errorf("CurrentPolicy() after a refused second SetPolicy = %+v, want %+v", got, p)
	}
}

func TestParseBackground(t *testing.T) {
	for s, want := range map[string]int32{"0": 0, "1": 1, "64": 64} {
		if got, err := ParseBackground(s); err != nil || got != want {
			t.Errorf("ParseBackground(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"-1", "", "x", "4294967296"} {
		if _, err := ParseBackground(s); err == nil {
			t.Errorf("ParseBackground(%q) succeeded, want an error", s)
		}
	}
	if err := (Policy{File: DefaultFile, Group: -1, Background: -1}).Validate(); err == nil {
		t.Error("Validate accepted Background -1")
	}
}
