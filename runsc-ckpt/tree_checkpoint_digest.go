package main

import (
	"fmt"

	"gvisor.dev/gvisor/runsc/container"
	"gvisor.dev/gvisor/runsc/flag"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt/treefmt"
)

// The digest an ELF checkpoint's manifest records for each image and archive
// (docs/tree-format.md, "Digests"): crc32c (the default: it catches a file damaged on a disk or a
// link, or cut short, for a twentieth of the cost of writing it) or sha256 (three times the cost
// of a copy; readable by builds that know only SHA-256). Chosen like the format: the command's
// --digest, else the global --ckpt-digest (so that an engine's runtime registration can set it),
// else the container's annotation dev.runsc-ckpt.checkpoint-digest, else crc32c.

// digestAnnotation selects the digest for a container, overridden by the flags.
const digestAnnotation = "dev.runsc-ckpt.checkpoint-digest"

// ckptDigestFlag is the global --ckpt-digest (registerDigestFlag).
var ckptDigestFlag string

// registerDigestFlag registers the global flag --ckpt-digest on fs.
func registerDigestFlag(fs *flag.FlagSet) {
	fs.StringVar(&ckptDigestFlag, "ckpt-digest", "", digestFlagHelp("the container's annotation "+digestAnnotation))
}

// digestFlagHelp is the help line of --digest and --ckpt-digest, whose default comes from next.
func digestFlagHelp(next string) string {
	return fmt.Sprintf("digest of each image an ELF `checkpoint` records in its manifest: %s (catches damage on a disk or a link) or %s (slower; readable by older builds); default: %s, else %s",
		treefmt.DigestCRC32C.Flag(), treefmt.DigestSHA256.Flag(), next, treefmt.DefaultDigest.Flag())
}

// chooseCheckpointDigest decides the digest of an ELF checkpoint of container c: the command's
// --digest if given, else the global --ckpt-digest if given, else the container's annotation (c
// may be nil), else treefmt.DefaultDigest. A bad value is an error naming where it came from.
func chooseCheckpointDigest(cmdFlag, globalFlag string, c *container.Container) (treefmt.DigestAlg, error) {
	for _, v := range []struct{ name, val string }{{"--digest", cmdFlag}, {"--ckpt-digest", globalFlag}} {
		if v.val != "" {
			a, err := treefmt.ParseDigestAlg(v.val)
			if err != nil {
				return "", fmt.Errorf("%s: %w", v.name, err)
			}
			return a, nil
		}
	}
	if c != nil && c.Spec != nil {
		if v, ok := c.Spec.Annotations[digestAnnotation]; ok {
			a, err := treefmt.ParseDigestAlg(v)
			if err != nil {
				return "", fmt.Errorf("annotation %s: %w", digestAnnotation, err)
			}
			return a, nil
		}
	}
	return treefmt.DefaultDigest, nil
}
