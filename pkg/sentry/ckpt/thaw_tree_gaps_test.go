package ckpt

import (
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/upstreamsrc"
)

// treeGapPremises are the upstream functions on which the tree restore's documented gaps rest
// (docs/upstream-gaps.md, "Thread ids of a restored tree" and "Shared fd tables and fs contexts
// of a restored tree"), with their fingerprints when the gaps were last checked:
//
//   - Task.Clone refuses clone3's set_tid (ENOTSUP) and copies the caller's registers (cloneAt
//     and the thaw's cloneThread rely on that copy);
//   - PIDNamespace.allocateTID hands out the first free id after the last one (thaw_tree_pids.go
//     predicts it with nextFree);
//   - Execve kills every other thread of the process (execveWithImage) and gives the task a fork
//     of its fd table (runExecveAfterSiblingExitStop.execute): threads made before a thaw's exec
//     do not survive it, and CLONE_FILES sharing ends at it.
//
// When a gVisor bump changes one of them, TestTreeGapPremises fails: re-read the function — set_tid
// support would let the restore give threads their tids, an exec that keeps the fd table would
// let shared tables come back — then update the docs and the fingerprint.
var treeGapPremises = []upstreamsrc.Mirror{
	{File: "pkg/sentry/kernel/task_clone.go", Func: "Task.Clone", Ours: "thaw_tree_agent.go cloneAt, thaw_threads.go cloneThread (tids of threads: set_tid refused)", Fingerprint: "d8023bba0d25e711"},
	{File: "pkg/sentry/kernel/task_start.go", Func: "PIDNamespace.allocateTID", Ours: "thaw_tree_pids.go nextFree", Fingerprint: "e643c78f2f7799e6"},
	{File: "pkg/sentry/kernel/task_exec.go", Func: "runExecveAfterExecveCredsLock.execveWithImage", Ours: "docs/upstream-gaps.md (threads do not survive a thaw's exec)", Fingerprint: "001a59f21389d71e"},
	{File: "pkg/sentry/kernel/task_exec.go", Func: "runExecveAfterSiblingExitStop.execute", Ours: "docs/upstream-gaps.md (the exec forks the fd table)", Fingerprint: "a561f8f5461fcbb8"},
}

func TestTreeGapPremises(t *testing.T) {
	for _, err := range upstreamsrc.CheckGVisorMirrors(treeGapPremises) {
		t.Error(err)
	}
}
