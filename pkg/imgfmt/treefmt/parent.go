package treefmt

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
)

// Incremental tree checkpoints (manifest version 3, docs/incremental.md "Container checkpoints").
//
// A checkpoint directory C may be incremental against a parent checkpoint directory P: each image
// of C whose pid has an image in P is an incremental image (format 1.4) against that image, and the
// manifest records P (ParentDir) and, per process, the parent's image name. P may be incremental
// itself: checkpoints form a chain of directories, as images form chains.
//
// The images name their parent images by a path in the *restoring sandbox* (imgfmt.ParentRef):
// the parent directory's SandboxPath. For a container whose root is the host's / that is the
// host path itself (the sandbox sees the host's files at their paths, and bind mounts do not
// work there); for any other container it is SandboxParentsRoot/ID, ID derived from the parent's
// manifest digest, where a restore bind-mounts the parent directory read-only. On the host the
// parent is found by Path (relative to the child's directory, as engines pass it) or HostPath,
// and must still have the manifest it had (ManifestSHA256): otherwise it is stale.

// SandboxParentsRoot is where a restore of a container whose root is not the host's / mounts the
// parent checkpoints of an incremental checkpoint, each at SandboxParentsRoot/ID.
const SandboxParentsRoot = "/.runsc-ckpt-restore/parents"

// ErrStaleParent marks a parent checkpoint that is missing or is not the one an incremental
// checkpoint was written against (the ESTALE of a single image's thaw).
var ErrStaleParent = errors.New("stale parent checkpoint")

// ParentDir names the checkpoint an incremental checkpoint was written against.
type ParentDir struct {
	// Path is the parent's directory as given to the checkpoint: relative to this checkpoint's
	// directory (the CRIU convention engines follow: "../pre-checkpoint") or absolute.
	Path string `json:"path"`
	// HostPath is its absolute host path at the checkpoint.
	HostPath string `json:"host_path"`
	// SandboxPath is the directory the images' parent references name: where a restoring
	// sandbox must see the parent (see the file comment).
	SandboxPath string `json:"sandbox_path"`
	// ManifestSHA256 is the SHA-256 of the parent's manifest.json: the parent's identity (its
	// manifest holds every image's size and digest).
	ManifestSHA256 string `json:"manifest_sha256"`
}

// validateParent checks the parent record and the processes' parent images.
func (m *Manifest) validateParent() error {
	if m.Parent != nil {
		pd := m.Parent
		switch {
		case m.Version < VersionParent:
			return invalidf("a parent checkpoint needs manifest version %d, this one says %d", VersionParent, m.Version)
		case pd.Path == "":
			return invalidf("parent: empty path")
		case !filepath.IsAbs(pd.HostPath):
			return invalidf("parent: host path %q is not absolute", pd.HostPath)
		case !path.IsAbs(pd.SandboxPath) || path.Clean(pd.SandboxPath) != pd.SandboxPath:
			return invalidf("parent: sandbox path %q is not an absolute clean path", pd.SandboxPath)
		case !isHexDigest(pd.ManifestSHA256):
			return invalidf("parent: manifest digest %q is not a SHA-256", pd.ManifestSHA256)
		}
	}
	for i := range m.Processes {
		p := &m.Processes[i]
		if p.ParentImage == "" {
			continue
		}
		if m.Parent == nil || p.Zombie != nil {
			return invalidf("pid %d: a parent image needs a parent checkpoint and a live process", p.PID)
		}
		if err := checkName(p.ParentImage); err != nil {
			return invalidf("pid %d: parent image %q: %v", p.PID, p.ParentImage, err)
		}
	}
	return nil
}

func isHexDigest(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == sha256.Size
}

// ManifestDigest returns the SHA-256 (hex) of dir's manifest.json, the identity a child records.
func ManifestDigest(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// ParentSandboxPath returns the SandboxPath of a parent checkpoint whose manifest digest is digest,
// for a container whose root is not the host's /.
func ParentSandboxPath(digest string) string {
	return path.Join(SandboxParentsRoot, digest[:16])
}

// ChainDir is one ancestor of an incremental checkpoint, found on the host.
type ChainDir struct {
	Dir         string // Its host directory.
	SandboxPath string // Where its children's images expect it in the sandbox.
	Manifest    *Manifest
}

// locateParent finds the parent pd of the checkpoint in dir: pd.Path relative to dir (or as is if
// absolute), else pd.HostPath; the first that holds a manifest with pd's digest. A parent that is
// nowhere, or only with another manifest, is an ErrStaleParent error.
func locateParent(dir string, pd *ParentDir) (string, error) {
	var cands []string
	if filepath.IsAbs(pd.Path) {
		cands = append(cands, pd.Path)
	} else {
		cands = append(cands, filepath.Join(dir, pd.Path))
	}
	if cands[0] != pd.HostPath {
		cands = append(cands, pd.HostPath)
	}
	var why []string
	for _, c := range cands {
		d, err := ManifestDigest(c)
		if err != nil {
			why = append(why, fmt.Sprintf("%s: %v", c, err))
			continue
		}
		if d != pd.ManifestSHA256 {
			why = append(why, fmt.Sprintf("%s holds another checkpoint (manifest digest %.16s…, recorded %.16s…)", c, d, pd.ManifestSHA256))
			continue
		}
		return filepath.Abs(c)
	}
	return "", fmt.Errorf("%w: the parent of %s is missing or changed (ESTALE): %v", ErrStaleParent, dir, why)
}

// MaxDirChain is the most checkpoint directories a chain holds, the complete one included: the
// depth of a chain of images (imgfmt.MaxChainDepth; this package does not import imgfmt, so that
// the guest tool's early start stays ahead of gVisor's initialisers: pkg/checkpt/early).
const MaxDirChain = 16

// OpenDirChain finds and checks the ancestors of the checkpoint in dir (manifest m), parent first:
// each found by locateParent and checked as CheckDir does, or with verify as VerifyDir does. A
// checkpoint without a parent has none. The images' own parent references are checked by
// treeincr.CheckImages.
func OpenDirChain(dir string, m *Manifest, verify bool) ([]ChainDir, error) {
	var chain []ChainDir
	cur, curM := dir, m
	for curM.Parent != nil {
		if len(chain)+1 >= MaxDirChain {
			return nil, invalidf("the chain of checkpoints behind %s is deeper than %d", dir, MaxDirChain)
		}
		pd, err := locateParent(cur, curM.Parent)
		if err != nil {
			return nil, err
		}
		check := CheckDir
		if verify {
			check = VerifyDir
		}
		pm, err := check(pd)
		if err != nil {
			return nil, fmt.Errorf("%w: parent checkpoint %s: %v", ErrStaleParent, pd, err)
		}
		chain = append(chain, ChainDir{Dir: pd, SandboxPath: curM.Parent.SandboxPath, Manifest: pm})
		cur, curM = pd, pm
	}
	return chain, nil
}
