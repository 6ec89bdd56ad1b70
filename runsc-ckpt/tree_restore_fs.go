package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"gvisor.dev/gvisor/runsc/specutils"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
)

// setRootfsUpper makes the restored sandbox build its root overlay with the checkpoint's archived
// upper layer (a treefmt.KindRootfsUpper archive): runsc applies the tar named by the annotation
// dev.gvisor.tar.rootfs.upper (or its per-container form) to the overlay's upper tmpfs when it
// creates the root filesystem, before any process runs. The tmpfs mounts are restored by the
// sentry (pkg/sentry/ckpt/thaw_tree_fs.go). doc is the derived config.json.
func setRootfsUpper(doc map[string]json.RawMessage, spec *specs.Spec, image string, m *treefmt.Manifest) error {
	var archive string
	for _, fa := range m.Filesystems {
		if fa.Kind == treefmt.KindRootfsUpper {
			archive = filepath.Join(image, fa.Archive)
		}
	}
	if archive == "" {
		return nil
	}
	key := specutils.AnnotationRootfsUpperTar
	if name := specutils.ContainerName(spec); name != "" {
		key += "." + name
	} else if t := specutils.SpecContainerType(spec); t == specutils.ContainerTypeContainer || t == specutils.ContainerTypeSandbox {
		fmt.Fprintf(os.Stderr, "runsc-ckpt restore: warning: the root filesystem's changes are not restored (a CRI container without a name annotation)\n")
		return nil
	}
	annotations := map[string]string{}
	if raw, ok := doc["annotations"]; ok {
		if err := json.Unmarshal(raw, &annotations); err != nil {
			return fmt.Errorf("annotations: %w", err)
		}
	}
	annotations[key] = archive
	return setJSON(doc, "annotations", annotations)
}

// rootfsUpperFlags returns the global flags the restored sandbox's run needs for setRootfsUpper's
// annotation: runsc refuses the annotation unless --allow-rootfs-tar-annotation is given.
func rootfsUpperFlags(m *treefmt.Manifest) []string {
	for _, fa := range m.Filesystems {
		if fa.Kind == treefmt.KindRootfsUpper {
			return []string{"--allow-rootfs-tar-annotation"}
		}
	}
	return nil
}
