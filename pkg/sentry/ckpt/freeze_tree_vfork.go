package ckpt

import (
	"errors"
	"fmt"
	"time"

	"gvisor.dev/gvisor/pkg/errors/linuxerr"
	"gvisor.dev/gvisor/pkg/sentry/kernel"
)

// A vfork parent sits in a stop until its child execs or exits, so it cannot capture itself; and
// a tree freeze parks the child, which then never does. Shells and posix_spawn vfork for every
// command, so a freeze that lands inside one of those microsecond windows used to fail with EBUSY
// (TestTreeFreezeStuckDoesNotHoldSandbox's forker hit it once in CI). Instead the freeze lets
// everything go, waits a moment for the child to exec or exit, and starts again; only a vfork
// child that does neither for about two seconds (vforkRetries × vforkRetryWait) makes it fail.

const (
	vforkRetries    = 100
	vforkRetryWait  = 20 * time.Millisecond
	vforkRetryFirst = 2 * time.Millisecond
)

// vforkInFlight is stopTree's error when a member is a vfork parent waiting for its child.
type vforkInFlight struct {
	parent, child int32
}

func (e *vforkInFlight) Error() string {
	return fmt.Sprintf("pid %d is a vfork parent waiting for pid %d to exec or exit", e.parent, e.child)
}

// Unwrap makes it EBUSY for whoever gives up retrying.
func (e *vforkInFlight) Unwrap() error { return linuxerr.EBUSY }

// stopTreeAroundVforks is stopTree, started again (everything released first) while it meets a
// vfork in flight, up to vforkRetries times.
func stopTreeAroundVforks(t *kernel.Task, root int32) ([]*treeMember, error) {
	members, err := stopTree(t, root)
	var vf *vforkInFlight
	for try := 0; errors.As(err, &vf) && try < vforkRetries; try++ {
		if try == 0 {
			t.Debugf("ckpt: tree freeze: %v: released everything, trying again", vf)
		}
		releaseMembers(t, members) // freeze_tree.go
		wait := vforkRetryWait
		if try == 0 {
			wait = vforkRetryFirst
		}
		if !sleepUnlessKilled(t, wait) {
			return nil, linuxerr.EINTR
		}
		members, err = stopTree(t, root)
	}
	if errors.As(err, &vf) {
		t.Infof("ckpt: tree freeze: %v for %d tries: not supported; retry when it has", vf, vforkRetries+1)
		return members, linuxerr.EBUSY
	}
	return members, err
}
