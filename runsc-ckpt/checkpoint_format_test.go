package main

import (
	"bytes"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"gvisor.dev/gvisor/runsc/container"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/ckptabi"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
)

// TestChooseCheckpointFormat: --format wins over the global --ckpt-format, which wins over the
// container's annotation; the default is gvisor; bad values are refused naming their source.
func TestChooseCheckpointFormat(t *testing.T) {
	annotated := func(v string) *container.Container {
		return &container.Container{Spec: &specs.Spec{Annotations: map[string]string{formatAnnotation: v}}}
	}
	plain := &container.Container{Spec: &specs.Spec{}}
	for _, tc := range []struct {
		name        string
		cmd, global string
		c           *container.Container
		want        checkpointFormat
		wantErr     string
	}{
		{"default", "", "", plain, formatGVisor, ""},
		{"no container", "", "", nil, formatGVisor, ""},
		{"annotation", "", "", annotated("elf"), formatELF, ""},
		{"global over annotation", "", "gvisor", annotated("elf"), formatGVisor, ""},
		{"global", "", "elf", plain, formatELF, ""},
		{"command over global", "gvisor", "elf", annotated("elf"), formatGVisor, ""},
		{"bad annotation", "", "", annotated("criu"), "", formatAnnotation},
		{"bad flag", "tar", "", plain, "", `"tar"`},
	} {
		got, err := chooseCheckpointFormat(tc.cmd, tc.global, tc.c)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want one naming %s", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

// TestFreezeHelperABI: the in-container helper's hand-assembled call uses checkpt's
// CKPT_FREEZE_TREE (mov $type, %edi: bf imm32 at the entry) and writes to fd 1.
func TestFreezeHelperABI(t *testing.T) {
	b := treefmt.FreezeHelper(ckptabi.CKPT_TREE_KILL)
	entry := 64 + 56 // ELF header + one program header
	want := []byte{0xbf, byte(ckptabi.CKPT_FREEZE_TREE), 0, 0, 0, 0xbe, 1, 0, 0, 0}
	if !bytes.Equal(b[entry:entry+len(want)], want) {
		t.Fatalf("helper code starts % x, want % x", b[entry:entry+len(want)], want)
	}
}
