package ckpt

import (
	"testing"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/upstreamsrc"
)

// stoppedCapturePremises are the upstream functions on which the capture of a stopped process
// from the coordinator's goroutine rests (freeze_tree_stopped.go, docs/upstream-gaps.md "A
// stopped process's FP state"), with their fingerprints when they were last checked:
//
//   - Task.SigaltStack pulls the task's full state (platform.Context.PullFullState) and asserts
//     nothing about the calling goroutine; with both addresses 0 it changes nothing;
//   - systrap's platformContext.PullFullState and subprocess.PullFullState only copy the FP state
//     the stub left in the context's shared memory into the arch context, and clear a flag;
//   - Task.doStop: a stopped task goroutine waits on its stop condition without touching its
//     platform context until the stop count is 0 (our hold keeps it above 0);
//   - Task.StateStatus reports "T" for a group stop and "t" for a ptrace stop, read under the
//     signal mutex;
//   - Kernel.Pause waits for every task goroutine to stop (why it cannot be used from a task
//     goroutine inside a syscall, nor while members are parked in task work).
//
// When a gVisor bump changes one of them, TestStoppedCapturePremises fails: re-read the function,
// check that the capture from outside is still safe, then update the fingerprint.
var stoppedCapturePremises = []upstreamsrc.Mirror{
	{File: "pkg/sentry/kernel/task_signals.go", Func: "Task.SigaltStack", Ours: "freeze_tree_stopped.go captureHeld (via captureThread)", Fingerprint: "b8624ba74fec9458"},
	{File: "pkg/sentry/platform/systrap/systrap.go", Func: "platformContext.PullFullState", Ours: "freeze_tree_stopped.go captureHeld", Fingerprint: "f48ead00e567f8b5"},
	{File: "pkg/sentry/platform/systrap/subprocess.go", Func: "subprocess.PullFullState", Ours: "freeze_tree_stopped.go captureHeld", Fingerprint: "3df4adb38275c205"},
	{File: "pkg/sentry/kernel/task_run.go", Func: "Task.doStop", Ours: "freeze_tree_stopped.go captureStoppedMember (holds)", Fingerprint: "d5b4493f214afbfd"},
	{File: "pkg/sentry/kernel/task_sched.go", Func: "Task.StateStatus", Ours: "freeze_tree_stopped.go captureStoppedMember (group or ptrace stop)", Fingerprint: "e2330663c34d9527"},
	{File: "pkg/sentry/kernel/kernel.go", Func: "Kernel.Pause", Ours: "freeze_tree_stopped.go (why not Pause)", Fingerprint: "1c991ab1f1a2fa7b"},
}

func TestStoppedCapturePremises(t *testing.T) {
	for _, err := range upstreamsrc.CheckGVisorMirrors(stoppedCapturePremises) {
		t.Error(err)
	}
}
