package inspect

import (
	"encoding/hex"
	"time"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
)

// ParentSummary is the parent reference of an incremental image, as inspect shows it.
type ParentSummary struct {
	Path          string `json:"path"`
	Size          int64  `json:"size"`
	FreezeTime    string `json:"freeze_time"`
	NotesSHA256   string `json:"notes_sha256"`
	DeltaMappings int    `json:"delta_mappings"`
	DeltaBytes    uint64 `json:"delta_bytes"` // Bytes of memory the delta mappings store.
}

// summarizeParent returns p's parent summary, nil for a complete image.
func summarizeParent(p *imgfmt.Process) *ParentSummary {
	pr := p.Parent
	if pr == nil {
		return nil
	}
	s := &ParentSummary{Path: pr.Image.Path, Size: pr.Size, FreezeTime: time.Unix(0, pr.FreezeTimeNano).UTC().Format(time.RFC3339Nano),
		NotesSHA256: hex.EncodeToString(pr.NotesSHA256[:])}
	for i := range p.Mappings {
		if m := &p.Mappings[i]; m.Delta {
			s.DeltaMappings++
			s.DeltaBytes += m.StoredSize()
		}
	}
	return s
}
