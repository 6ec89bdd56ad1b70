package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
)

// The restore of an incremental container checkpoint (docs/incremental.md, "Container
// checkpoints"): the images of the checkpoint name their parent images by a path in the sandbox
// (treefmt.ParentDir.SandboxPath), and the thaw of each process opens its chain by those paths. The
// host finds and checks every ancestor directory first (treefmt.OpenDirChain: missing or changed
// → a stale-parent error before any sandbox starts), then makes each visible at its sandbox path:
// a read-only bind mount in the derived bundle, or, for a container whose root is the host's /
// (where bind mounts do not work), nothing, the parent having to be at its host path already.

// parentMounts returns the bind mounts that show chain's directories at their sandbox paths in a
// container whose root is not the host's /, creating their mount points under stage (the
// directory mounted at restoreMountPoint) where needed. With hostRoot it returns none and checks
// that every ancestor is where its children's images expect it.
func parentMounts(stage string, hostRoot bool, chain []treefmt.ChainDir) ([]specs.Mount, error) {
	var mounts []specs.Mount
	for _, c := range chain {
		if hostRoot {
			if filepath.Clean(c.SandboxPath) != filepath.Clean(c.Dir) {
				return nil, fmt.Errorf("%w: parent checkpoint %s: its children's images expect it at %s; a container whose root is the host's / sees host files at their own paths only (move it back there)", treefmt.ErrStaleParent, c.Dir, c.SandboxPath)
			}
			continue
		}
		if rel, ok := strings.CutPrefix(c.SandboxPath, restoreMountPoint+"/"); ok {
			if err := os.MkdirAll(filepath.Join(stage, rel), 0o755); err != nil {
				return nil, fmt.Errorf("creating the mount point of parent checkpoint %s: %w", c.Dir, err)
			}
		}
		mounts = append(mounts, specs.Mount{Destination: c.SandboxPath, Type: "bind", Source: c.Dir, Options: []string{"rbind", "ro"}})
	}
	return mounts, nil
}
