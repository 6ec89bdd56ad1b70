package ckpt

import (
	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// thaw replaces t's process with the image in req.file; on success it does not return to the
// caller's code: the thawed program resumes with req.retval as its sys_checkpoint result.
// Not implemented yet: it returns ENOSYS, and the integration tests expect exactly that.
//
// Preconditions: running on t's task goroutine; req was validated by newThawRequest.
func thaw(t *kernel.Task, req thawRequest) (uintptr, *kernel.SyscallControl, error) {
	return 0, nil, linuxerr.ENOSYS
}
