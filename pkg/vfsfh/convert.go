package vfsfh

import "github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"

// ToImage converts h to the image's file handle.
func (h Handle) ToImage() *imgfmt.FileHandle {
	return &imgfmt.FileHandle{
		Path:      h.Path,
		DevMajor:  h.DevMajor,
		DevMinor:  h.DevMinor,
		Ino:       h.Ino,
		Mode:      h.Mode,
		Size:      h.Size,
		MtimeNano: h.MtimeNano,
		CtimeNano: h.CtimeNano,
	}
}

// FromImage converts an image's file handle to a Handle. A nil fh gives the zero Handle.
func FromImage(fh *imgfmt.FileHandle) Handle {
	if fh == nil {
		return Handle{}
	}
	return Handle{
		Path:      fh.Path,
		DevMajor:  fh.DevMajor,
		DevMinor:  fh.DevMinor,
		Ino:       fh.Ino,
		Mode:      fh.Mode,
		Size:      fh.Size,
		MtimeNano: fh.MtimeNano,
		CtimeNano: fh.CtimeNano,
	}
}
