package ckpt

import (
	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
	"github.com/runsc-ckpt/runsc-ckpt/pkg/vfsfh"
)

// Checks of values an image controls that the codec accepts but a thaw must refuse before it
// commits (issue 13, docs/security.md): each would otherwise block the thaw, or fail or misbehave
// after the point of no return. They run in prepareThaw, before anything is reopened.

// checkHostile returns an EINVAL error (errInvalidImage) for an image whose values no freeze
// writes: a mapping stored by reference or an executable that is not a regular file, an fd whose
// file handle has another file type than its kind says (a "regular file" handle naming a FIFO would
// be reopened as a FIFO, which can block).
func checkHostile(p *imgfmt.Process) error {
	if exe := p.VM.Exe; exe != nil && exe.Path != "" && vfsfh.FromImage(exe).Type() != vfsfh.ModeRegular {
		return invalidf("the executable %q has file type %#o, not a regular file", exe.Path, vfsfh.FromImage(exe).Type())
	}
	for i := range p.Mappings {
		m := &p.Mappings[i]
		if m.Kind != imgfmt.MapReference || m.File == nil {
			continue
		}
		switch typ := vfsfh.FromImage(m.File).Type(); typ {
		case vfsfh.ModeRegular, vfsfh.ModeCharDev, vfsfh.ModeBlockDev:
		default:
			return invalidf("mapping %d [%#x, %#x) is stored by reference to %q of file type %#o, which cannot be mapped", i, m.Start, m.End, m.File.Path, typ)
		}
	}
	for i := range p.Files {
		f := &p.Files[i]
		if f.Handle == nil || f.IsImage {
			continue
		}
		if o, _ := p.ObjectOf(f.FD); o != nil {
			continue
		}
		if want, ok := kindModes[f.Kind]; ok && vfsfh.FromImage(f.Handle).Type() != want {
			return invalidf("fd %d: a file of kind %d has a handle of file type %#o", f.FD, f.Kind, vfsfh.FromImage(f.Handle).Type())
		}
	}
	return nil
}

// kindModes is the file type of each fd kind that is reopened by path (capture_files.go).
var kindModes = map[imgfmt.FileKind]uint32{
	imgfmt.FileRegular:   vfsfh.ModeRegular,
	imgfmt.FileDirectory: vfsfh.ModeDir,
	imgfmt.FileCharDev:   vfsfh.ModeCharDev,
	imgfmt.FileBlockDev:  vfsfh.ModeBlockDev,
	imgfmt.FileFIFO:      vfsfh.ModeFIFO,
	imgfmt.FileSymlink:   vfsfh.ModeSymlink,
}
