package ckpt

import (
	"fmt"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/imgfmt"
)

// Kernel objects no image can hold: the freeze refuses them with EOPNOTSUPP before anything is
// written (no partial image), instead of writing an image whose thawed program would find them
// gone or, worse, its ring memory disconnected from the kernel's side.
//
//   - io_uring instances (gVisor's --iouring): their fd (freeze_capture_objects.go) and their mapped rings,
//     which outlive the fd; the in-flight submissions and the kernel's view of the rings cannot be
//     captured.
//   - AIO contexts (io_setup): their ring mapping "[aio]"; the context id a program holds is that
//     mapping's address, and in-flight requests are the kernel's.
//
// userfaultfd does not exist in gVisor (ENOSYS), so no process has one.

// unsupportedMappingNames maps the names of special mappings to what they belong to.
var unsupportedMappingNames = map[string]string{
	"[aio]":                 "an AIO context (io_setup)",
	"anon_inode:[io_uring]": "io_uring rings",
}

// refuseUnsupportedMappings returns an EOPNOTSUPP error naming the first mapping of an object the
// image cannot hold, or nil.
func refuseUnsupportedMappings(maps []imgfmt.Mapping) error {
	for i := range maps {
		if what, ok := unsupportedMappingNames[maps[i].Name]; ok {
			return fmt.Errorf("mapping [%#x, %#x) is %s, which an image cannot hold: %w", maps[i].Start, maps[i].End, what, errUnsupportedObject)
		}
	}
	return nil
}
