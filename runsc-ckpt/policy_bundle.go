package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/abi/linux"
)

// How the policy flags reach the sentry of a bundle (create, run)
//
// runsc's sandbox start does not use the spec that create/run hold in memory: it opens
// <bundle>/config.json again and donates that file to `boot` as --spec-fd (sandbox.New), and the
// gofer does the same. So annotations added to the in-memory spec alone never reach the sentry.
// The user's bundle must not be modified, so when a policy flag adds an annotation, runsc-ckpt
// writes a derived bundle: a directory of its own under runsc's --root holding a config.json that
// is the user's with the annotations added and the root and mount paths made absolute (as gVisor
// resolved them against the user's bundle). create/run are pointed at it through their --bundle
// flag. The derived config.json is read only while the container is created (gofer and sandbox
// start); afterwards runsc uses the bundle directory only as a name (state, hooks). So when the
// command returns, the container's state file gets the user's bundle directory back and the
// derived bundle is removed. See docs/policy.md.

// derivedBundlePrefix starts the name of a derived bundle directory under runsc's root. '_' cannot
// occur in a container id, so the name cannot be mistaken for runsc's own files.
const derivedBundlePrefix = "runsc-ckpt-bundle_"

// derivedBundle is a bundle directory written for one create/run command.
type derivedBundle struct {
	rootDir    string // runsc's --root
	cid        string // the (root) container's id
	dir        string // the derived bundle directory
	userBundle string // the user's --bundle, exactly as given (or the cwd)
}

// newDerivedBundle writes a derived bundle for container cid of userBundle under rootDir: the
// user's config.json with the annotations added, where spec (read from userBundle by runsc and
// fixed up) gives the absolute root and mount paths.
func newDerivedBundle(rootDir, cid, userBundle string, spec *specs.Spec, annotations map[string]string) (*derivedBundle, error) {
	src := filepath.Join(userBundle, "config.json")
	data, err := os.ReadFile(src)
	if err != nil {
		return nil, fmt.Errorf("reading the bundle's spec: %w", err)
	}
	derived, err := deriveConfig(data, spec, annotations)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	if err := os.MkdirAll(rootDir, 0o711); err != nil {
		return nil, fmt.Errorf("creating the state directory: %w", err)
	}
	dir, err := os.MkdirTemp(rootDir, derivedBundlePrefix+cid+"_")
	if err != nil {
		return nil, fmt.Errorf("creating a bundle with the checkpoint policy: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), derived, 0o600); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("writing a bundle with the checkpoint policy: %w", err)
	}
	return &derivedBundle{rootDir: rootDir, cid: cid, dir: dir, userBundle: userBundle}, nil
}

// deriveConfig returns the config.json data with annotations added and with root.path and every
// non-empty mounts[i].source replaced by spec's (absolute) ones. Every other field, known to runsc
// or not, is kept as it is.
func deriveConfig(data []byte, spec *specs.Spec, annotations map[string]string) ([]byte, error) {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	all := map[string]string{}
	if raw, ok := doc["annotations"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &all); err != nil {
			return nil, fmt.Errorf("annotations: %w", err)
		}
	}
	for k, v := range annotations {
		all[k] = v
	}
	if err := setJSON(doc, "annotations", all); err != nil {
		return nil, err
	}

	if spec.Root != nil {
		var root map[string]json.RawMessage
		if err := json.Unmarshal(doc["root"], &root); err != nil {
			return nil, fmt.Errorf("root: %w", err)
		}
		path, err := filepath.Abs(spec.Root.Path)
		if err != nil {
			return nil, err
		}
		if err := setJSON(root, "path", path); err != nil {
			return nil, err
		}
		if err := setJSON(doc, "root", root); err != nil {
			return nil, err
		}
	}

	if raw, ok := doc["mounts"]; ok && string(raw) != "null" {
		var mounts []map[string]json.RawMessage
		if err := json.Unmarshal(raw, &mounts); err != nil {
			return nil, fmt.Errorf("mounts: %w", err)
		}
		if len(mounts) != len(spec.Mounts) {
			return nil, fmt.Errorf("%d mounts, runsc read %d", len(mounts), len(spec.Mounts))
		}
		for i, m := range spec.Mounts {
			if m.Source == "" {
				continue
			}
			source, err := filepath.Abs(m.Source)
			if err != nil {
				return nil, err
			}
			if err := setJSON(mounts[i], "source", source); err != nil {
				return nil, err
			}
		}
		if err := setJSON(doc, "mounts", mounts); err != nil {
			return nil, err
		}
	}
	return json.MarshalIndent(doc, "", "\t")
}

// setJSON sets obj[key] to the JSON encoding of v.
func setJSON(obj map[string]json.RawMessage, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("%s: %w", key, err)
	}
	obj[key] = raw
	return nil
}

// finish is called when the create/run command has returned: if the container still exists, its
// state records the user's bundle directory again instead of the derived one; then the derived
// bundle is removed.
func (d *derivedBundle) finish() error {
	err := d.restoreStateBundle()
	if rmErr := os.RemoveAll(d.dir); rmErr != nil && err == nil {
		err = fmt.Errorf("removing the derived bundle: %w", rmErr)
	}
	return err
}

// runscStateBase returns the path, without extension, of the state file (".state") and lock file
// (".lock") runsc keeps in rootDir for the root container cid of a sandbox (whose sandbox id is its
// own id): "<container>_sandbox:<sandbox>". This mirrors runsc/container/state_file.go (buildPath,
// unexported); TestStateFileMatchesUpstream fails if upstream changes it.
func runscStateBase(rootDir, cid string) string {
	return filepath.Join(rootDir, cid+"_sandbox:"+cid)
}

// runscStateGlob matches the state and lock files of container cid in any sandbox.
func runscStateGlob(rootDir, cid string) string {
	return filepath.Join(rootDir, cid+"_sandbox:*")
}

// restoreStateBundle rewrites the bundleDir field of the container's state file from the derived
// bundle to the user's, under the state file's lock (runscStateBase); a derived bundle is only
// made for a root container. A container that no longer exists (a failed create, an attached run
// that has finished) is no error.
func (d *derivedBundle) restoreStateBundle() error {
	base := runscStateBase(d.rootDir, d.cid)
	lock, err := os.Open(base + ".lock")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening the container's lock file: %w", err)
	}
	defer lock.Close()
	if err := flockRetry(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("locking the container's state: %w", err)
	}
	defer func() { _ = flockRetry(int(lock.Fd()), unix.LOCK_UN) }()

	statePath := base + ".state"
	data, err := os.ReadFile(statePath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the container's state: %w", err)
	}
	var state map[string]json.RawMessage
	if err := json.Unmarshal(data, &state); err != nil {
		return fmt.Errorf("decoding %s: %w", statePath, err)
	}
	var bundle string
	if err := json.Unmarshal(state["bundleDir"], &bundle); err != nil || bundle != d.dir {
		// Not the container this command created with the derived bundle.
		return nil
	}
	if err := setJSON(state, "bundleDir", d.userBundle); err != nil {
		return err
	}
	out, err := json.Marshal(state)
	if err != nil {
		return err
	}
	if err := os.WriteFile(statePath, out, 0o640); err != nil {
		return fmt.Errorf("writing the container's state: %w", err)
	}
	return nil
}

// flockRetry is flock(2), retried on EINTR.
func flockRetry(fd, how int) error {
	for {
		if err := unix.Flock(fd, how); err != unix.EINTR {
			return err
		}
	}
}

// hasRunAsRootCaps reports whether this process has the capabilities without which
// specutils.MaybeRunAsRoot re-executes runsc in a new user namespace.
func hasRunAsRootCaps() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	for _, c := range []linux.Capability{linux.CAP_SYS_ADMIN, linux.CAP_SYS_CHROOT, linux.CAP_SETUID, linux.CAP_SETGID} {
		if data[c/32].Effective&(1<<(uint(c)%32)) == 0 {
			return false
		}
	}
	return true
}
