package imgfmt

import (
	"os"
	"syscall"
)

// stBlocks returns the 512-byte blocks a file occupies on disk.
func stBlocks(fi os.FileInfo) int64 { return fi.Sys().(*syscall.Stat_t).Blocks }
