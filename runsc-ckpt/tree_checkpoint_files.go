package main

import (
	"os"
	"strconv"

	"gvisor.dev/gvisor/pkg/log"
	"gvisor.dev/gvisor/runsc/container"
)

// Image files of a container checkpoint into a directory. The sentry writes the tree stream into
// a host pipe; each byte of an image used to be copied into the pipe, out of it here and into the
// image file, with the two sides taking turns on a full pipe (4x a plain copy of the bytes). Now
// the helper also gets one empty host file per process expected (fds 3, 4, ..., created in the
// staging directory, treefmt.Stage.ImageFiles), the sentry writes each of the first images
// straight into its own file, at the page cache's speed, and the stream through the pipe carries
// only the rest: a SLOT record per image file written, the filesystem archives, the manifest, and
// the images of processes beyond the files (a container that forked meanwhile).

// maxImageFiles bounds the image files passed to the helper: gVisor's urpc carries at most 128
// files with a call, and the exec also passes the helper's fds 0-2 and its executable.
const maxImageFiles = 112

// imageFileHeadroom is added to the container's process count: processes forked between the
// count and the freeze still get a file of their own.
const imageFileHeadroom = 4

// imageFilesEnv overrides the number of image files (0: everything through the stream). Tests
// use it to cover images written both ways in one checkpoint.
const imageFilesEnv = "RUNSC_CKPT_TREE_IMAGE_FILES"

// imageFileCount returns how many image files to pass for a checkpoint of c: its processes plus
// headroom, at most maxImageFiles.
func imageFileCount(c *container.Container) int {
	if v, ok := os.LookupEnv(imageFilesEnv); ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			return min(n, maxImageFiles)
		}
	}
	ps, err := c.Processes()
	if err != nil {
		log.Warningf("checkpoint: listing the processes of %q: %v (passing %d image files)", c.ID, err, maxImageFiles/4)
		return maxImageFiles / 4
	}
	return min(len(ps)+imageFileHeadroom, maxImageFiles)
}
