package treeincr

import (
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
)

// TestDepths: treefmt keeps its own copy of the chain depth (it must not import imgfmt).
func TestDepths(t *testing.T) {
	if treefmt.MaxDirChain != imgfmt.MaxChainDepth {
		t.Errorf("treefmt.MaxDirChain = %d, imgfmt.MaxChainDepth = %d: keep them equal", treefmt.MaxDirChain, imgfmt.MaxChainDepth)
	}
}

// TestChainLocator maps sandbox paths of the chain's directories to their host directories and
// leaves other paths alone.
func TestChainLocator(t *testing.T) {
	loc := ChainLocator([]treefmt.ChainDir{{Dir: "/host/P", SandboxPath: "/.runsc-ckpt-restore/parents/abc"}})
	ref := &imgfmt.ParentRef{Image: imgfmt.FileHandle{Path: "/.runsc-ckpt-restore/parents/abc/pid-7.img"}}
	if got := loc("/host/C/pid-7.img", ref); got != "/host/P/pid-7.img" {
		t.Errorf("locate = %q, want /host/P/pid-7.img", got)
	}
	ref.Image.Path = "/elsewhere/pid-7.img"
	if got := loc("/host/C/pid-7.img", ref); got != "" {
		t.Errorf("locate of an unknown directory = %q, want \"\"", got)
	}
}
