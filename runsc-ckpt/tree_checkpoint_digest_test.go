package main

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"gvisor.dev/gvisor/runsc/container"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
)

// TestChooseCheckpointDigest: --digest wins over the global --ckpt-digest, which wins over the
// container's annotation; the default is crc32c; bad values are refused naming their source.
func TestChooseCheckpointDigest(t *testing.T) {
	annotated := func(v string) *container.Container {
		return &container.Container{Spec: &specs.Spec{Annotations: map[string]string{digestAnnotation: v}}}
	}
	plain := &container.Container{Spec: &specs.Spec{}}
	for _, tc := range []struct {
		name        string
		cmd, global string
		c           *container.Container
		want        treefmt.DigestAlg
		wantErr     string
	}{
		{"default", "", "", plain, treefmt.DigestCRC32C, ""},
		{"no container", "", "", nil, treefmt.DigestCRC32C, ""},
		{"annotation", "", "", annotated("sha256"), treefmt.DigestSHA256, ""},
		{"global over annotation", "", "crc32c", annotated("sha256"), treefmt.DigestCRC32C, ""},
		{"global", "", "sha256", plain, treefmt.DigestSHA256, ""},
		{"command over global", "crc32c", "sha256", annotated("sha256"), treefmt.DigestCRC32C, ""},
		{"command", "sha256", "", plain, treefmt.DigestSHA256, ""},
		{"bad annotation", "", "", annotated("md5"), "", digestAnnotation},
		{"bad global", "", "md5", plain, "", "--ckpt-digest"},
		{"bad flag", "SHA256", "", plain, "", `--digest: digest "SHA256": want crc32c or sha256`},
	} {
		got, err := chooseCheckpointDigest(tc.cmd, tc.global, tc.c)
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
