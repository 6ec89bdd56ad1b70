package ckpt

import (
	"errors"
	"fmt"
	"testing"

	"gvisor.dev/gvisor/pkg/errors/linuxerr"
)

// TestSinkError checks that a failed image write leaves freeze with an errno of docs/abi.md: the
// guest-side fuzzer saw EDESTADDRREQ from a freeze into an unconnected datagram socket.
func TestSinkError(t *testing.T) {
	for _, c := range []struct {
		err  error
		want error
	}{
		{linuxerr.EDESTADDRREQ, linuxerr.EPIPE},
		{linuxerr.ENOTCONN, linuxerr.EPIPE},
		{linuxerr.ECONNRESET, linuxerr.EPIPE},
		{linuxerr.EDQUOT, linuxerr.ENOSPC},
		{linuxerr.EINVAL, linuxerr.EIO},
		{errors.New("not an errno"), linuxerr.EIO},
		{linuxerr.ENOSPC, linuxerr.ENOSPC},
		{linuxerr.EPIPE, linuxerr.EPIPE},
		{linuxerr.EAGAIN, linuxerr.EAGAIN},
		{fmt.Errorf("wrapped: %w", linuxerr.EINTR), linuxerr.EINTR},
		{linuxerr.ERESTARTSYS, linuxerr.ERESTARTSYS},
	} {
		if got := sysErrno(errnoFreeze, sinkError(c.err)); got != c.want {
			t.Errorf("sinkError(%v) reports %v, want %v", c.err, got, c.want)
		}
	}
}
