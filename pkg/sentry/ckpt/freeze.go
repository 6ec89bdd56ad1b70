package ckpt

import (
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// freeze writes the image of req.target's process to req.file (or to the policy's ckpt-file).
// Not implemented yet: it returns ENOSYS, and the integration tests expect exactly that.
//
// Preconditions: running on t's task goroutine; req was validated by newFreezeRequest.
func freeze(t *kernel.Task, req freezeRequest) error {
	return linuxerr.ENOSYS
}
