package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"gvisor.dev/gvisor/runsc/config"
	"gvisor.dev/gvisor/runsc/specutils"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
)

// setRootfsUpper makes the restored sandbox build its root overlay with the checkpoint's archived
// upper layer (a treefmt.KindRootfsUpper archive): runsc applies the tar named by the annotation
// dev.gvisor.tar.rootfs.upper (or its per-container form) to the overlay's upper tmpfs when it
// creates the root filesystem, before any process runs. The tmpfs mounts are restored by the
// sentry (pkg/sentry/ckpt/thaw_tree_fs.go). doc is the derived config.json.
func setRootfsUpper(conf *config.Config, doc map[string]json.RawMessage, spec *specs.Spec, image string, m *treefmt.Manifest) error {
	fa := rootfsUpper(m)
	if fa == nil {
		return nil
	}
	if o := conf.GetOverlay2(); o.RootOverlayMedium() == config.NoOverlay {
		// A sandbox without a root overlay has nowhere to put the layer.
		fmt.Fprintf(os.Stderr, "runsc-ckpt restore: warning: the checkpoint's changes to the root filesystem (%s, %d bytes) are not restored: this sandbox has no root overlay (--overlay2=%s)\n", fa.Archive, fa.Size, o.String())
		return nil
	}
	archive := filepath.Join(image, fa.Archive)
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

// rootfsUpper returns m's rootfs upper layer archive, or nil.
func rootfsUpper(m *treefmt.Manifest) *treefmt.FilesystemArchive {
	for i := range m.Filesystems {
		if m.Filesystems[i].Kind == treefmt.KindRootfsUpper {
			return &m.Filesystems[i]
		}
	}
	return nil
}

// rootfsUpperFlags returns the global flags the restored sandbox's run needs for setRootfsUpper's
// annotation: runsc refuses the annotation unless --allow-rootfs-tar-annotation is given.
func rootfsUpperFlags(conf *config.Config, m *treefmt.Manifest) []string {
	if o := conf.GetOverlay2(); rootfsUpper(m) == nil || o.RootOverlayMedium() == config.NoOverlay {
		return nil
	}
	return []string{"--allow-rootfs-tar-annotation"}
}
