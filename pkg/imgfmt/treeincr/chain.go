package treeincr

import (
	"fmt"
	"path"
	"path/filepath"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
)

// ChainLocator returns the imgfmt.OpenChainFilesWith locator of a chain of checkpoint directories
// (treefmt.OpenDirChain): a parent image named by a path in one of their SandboxPaths is that
// directory's file on the host.
func ChainLocator(chain []treefmt.ChainDir) func(string, *imgfmt.ParentRef) string {
	hostOf := make(map[string]string, len(chain))
	for _, c := range chain {
		hostOf[c.SandboxPath] = c.Dir
	}
	return func(_ string, ref *imgfmt.ParentRef) string {
		if d, ok := hostOf[path.Dir(ref.Image.Path)]; ok {
			return filepath.Join(d, path.Base(ref.Image.Path))
		}
		return ""
	}
}

// OpenChain finds and checks the ancestors of the checkpoint in dir (manifest m) as
// treefmt.OpenDirChain does, then opens the chain of every incremental image of m as a thaw will
// (imgfmt.CheckParent: each parent image's size, notes digest and freeze time), so that a stale
// parent is reported before a sandbox starts. It reads the images' headers and notes only.
func OpenChain(dir string, m *treefmt.Manifest, verify bool) ([]treefmt.ChainDir, error) {
	chain, err := treefmt.OpenDirChain(dir, m, verify)
	if err != nil || len(chain) == 0 {
		return chain, err
	}
	locate := ChainLocator(chain)
	for _, p := range m.Processes {
		if p.ParentImage == "" {
			continue
		}
		c, err := imgfmt.OpenChainFilesWith(filepath.Join(dir, p.Image), locate)
		if err != nil {
			return nil, fmt.Errorf("%w: pid %d: %v", treefmt.ErrStaleParent, p.PID, err)
		}
		c.Close()
	}
	return chain, nil
}
