package treefmt

import (
	"errors"
	"fmt"
	"sort"
)

// The digests a manifest records (digest.go has the algorithms).
//
// Each image and each filesystem archive has one digest, in one of two places:
//
//   - image_sha256 / sha256: the sparse SHA-256 in hex, as every version wrote it;
//   - image_digest / digest (version 5): "ALG:HEX", the algorithm named (crc32c-sparse,
//     sha256-sparse).
//
// A writer puts a SHA-256 into the old field, so that a checkpoint taken with --digest=sha256
// stays readable by builds that know only version 4, and any other digest into the new field with
// the manifest at version 5 at least (RaiseVersion): an older build then refuses the manifest by its
// version ("manifest version 5 not supported") rather than finding no digest it knows. A
// manifest may mix the two (an incremental checkpoint's images keep the algorithm they had).

// checkDigestFields checks the two digest fields of one file: exactly one is set, the SHA-256
// as 64 hex digits, the other as a known "ALG:HEX" in a manifest of version 5 or later.
func (m *Manifest) checkDigestFields(sha, digest string) error {
	switch {
	case sha != "" && digest != "":
		return errors.New("has both a SHA-256 and a digest naming its algorithm")
	case sha == "" && digest == "":
		return errors.New("missing its digest (a SHA-256, or from version 5 a digest naming its algorithm)")
	case sha != "":
		if len(sha) != 64 {
			return fmt.Errorf("SHA-256 %q is not 64 hex digits", sha)
		}
		return nil
	}
	if m.Version < VersionDigest {
		return fmt.Errorf("a digest naming its algorithm needs manifest version %d, this one says %d", VersionDigest, m.Version)
	}
	_, err := ParseFileDigest(digest)
	return err
}

// recordedDigest returns the digest of a file from its two fields (checkDigestFields).
func recordedDigest(sha, digest string) (FileDigest, error) {
	if digest != "" {
		return ParseFileDigest(digest)
	}
	if sha == "" {
		return FileDigest{}, errors.New("no digest recorded")
	}
	return FileDigest{Alg: DigestSHA256, Hex: sha}, nil
}

// setDigest returns the two fields that record d.
func setDigest(d FileDigest) (sha, digest string) {
	if d.Alg == DigestSHA256 {
		return d.Hex, ""
	}
	return "", d.String()
}

// RecordedDigest returns the digest the manifest records for p's image.
func (p *Process) RecordedDigest() (FileDigest, error) {
	return recordedDigest(p.ImageSHA256, p.ImageDigest)
}

// SetDigest records d as the digest of p's image (a SHA-256 in ImageSHA256, any other in
// ImageDigest). The manifest then needs RaiseVersion.
func (p *Process) SetDigest(d FileDigest) { p.ImageSHA256, p.ImageDigest = setDigest(d) }

// RecordedDigest returns the digest the manifest records for the archive.
func (fa *FilesystemArchive) RecordedDigest() (FileDigest, error) {
	return recordedDigest(fa.SHA256, fa.Digest)
}

// SetDigest records d as the archive's digest (as Process.SetDigest).
func (fa *FilesystemArchive) SetDigest(d FileDigest) { fa.SHA256, fa.Digest = setDigest(d) }

// NeededVersion returns the lowest manifest version that can express m: 1, 2 with filesystem
// archives, 3 with a parent, 4 with a stopped process, 5 with a digest naming its algorithm.
func (m *Manifest) NeededVersion() int {
	v := 1
	if len(m.Filesystems) > 0 {
		v = 2
	}
	if m.Parent != nil {
		v = max(v, VersionParent)
	}
	for _, p := range m.Processes {
		if p.ParentImage != "" {
			v = max(v, VersionParent)
		}
		if p.Stopped != nil {
			v = max(v, VersionStopped)
		}
		if p.ImageDigest != "" {
			v = max(v, VersionDigest)
		}
	}
	for _, fa := range m.Filesystems {
		if fa.Digest != "" {
			v = max(v, VersionDigest)
		}
	}
	return v
}

// RaiseVersion raises m.Version to NeededVersion if it is lower (it never lowers it).
func (m *Manifest) RaiseVersion() { m.Version = max(m.Version, m.NeededVersion()) }

// DigestAlgs returns the algorithms of the digests m records, sorted (unparsable ones left out).
func (m *Manifest) DigestAlgs() []DigestAlg {
	seen := make(map[DigestAlg]bool)
	for i := range m.Processes {
		if m.Processes[i].Image == "" {
			continue
		}
		if d, err := m.Processes[i].RecordedDigest(); err == nil {
			seen[d.Alg] = true
		}
	}
	for i := range m.Filesystems {
		if d, err := m.Filesystems[i].RecordedDigest(); err == nil {
			seen[d.Alg] = true
		}
	}
	var out []DigestAlg
	for a := range seen {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
