package ckpt

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"gvisor.dev/gvisor/pkg/sentry/kernel"

	"github.com/runsc-ckpt/runsc-ckpt/pkg/upstreamsrc"
)

// timekeeperMethods are the exported methods of *kernel.Timekeeper at the pinned gVisor. None sets
// the monotonic clock's offset: upstream's restore sets it once, inside SetClocks, from the saved
// state, so a container restored from ELF images into a new sandbox starts its CLOCK_MONOTONIC
// near 0 (docs/upstream-gaps.md, "CLOCK_MONOTONIC of a restored container").
var timekeeperMethods = []string{
	"AfterFunc", "BootTime", "Destroy", "GetTime", "Now", "NowMonotonic", "Pause", "Resume",
	"SetClocks", "StateFields", "StateLoad", "StateSave", "StateTypeName",
}

// TestTimekeeperHasNoOffsetSetter fails when a gVisor bump changes Timekeeper's exported methods:
// if one can now move the monotonic clock, the tree restore should use it to continue the
// checkpoint's clock; otherwise update the list.
func TestTimekeeperHasNoOffsetSetter(t *testing.T) {
	typ := reflect.TypeOf(&kernel.Timekeeper{})
	var got []string
	for i := 0; i < typ.NumMethod(); i++ {
		got = append(got, typ.Method(i).Name)
	}
	slices.Sort(got)
	if !slices.Equal(got, timekeeperMethods) {
		t.Fatalf("*kernel.Timekeeper's exported methods changed:\n got %q\nwant %q\nIf one sets the monotonic clock, make the tree restore continue the checkpoint's clock (docs/upstream-gaps.md).", got, timekeeperMethods)
	}
}

// timekeeperStateFields are Timekeeper's saved fields at the pinned gVisor: saveMonotonic and
// saveRealtime (3 and 4) are what upstream's restore continues the clock from, the fields a
// rewritten state stream would carry (docs/upstream-gaps.md, the route not tried). clocks and
// monotonicOffset are not saved: if they become so, re-read the route.
var timekeeperStateFields = []string{"realtimeClock", "monotonicClock", "bootTime", "saveMonotonic", "saveRealtime"}

// TestClockRouteFacts checks two facts the write-up of the CLOCK_MONOTONIC routes rests on:
// Timekeeper's saved fields, and that *kernel.Kernel hands out no *kernel.VDSOParamPage (the
// kernel's own param page object is out of reach, so a second one over the same page diverges
// from it). Either changing in a gVisor bump may open a route.
func TestClockRouteFacts(t *testing.T) {
	if got := (&kernel.Timekeeper{}).StateFields(); !slices.Equal(got, timekeeperStateFields) {
		t.Errorf("Timekeeper.StateFields changed:\n got %q\nwant %q\nre-read docs/upstream-gaps.md (CLOCK_MONOTONIC of a restored container)", got, timekeeperStateFields)
	}
	paramPage := reflect.TypeOf((*kernel.VDSOParamPage)(nil))
	for _, recv := range []any{(*kernel.Kernel)(nil), (*kernel.Timekeeper)(nil), (*kernel.Task)(nil)} {
		typ := reflect.TypeOf(recv)
		for i := 0; i < typ.NumMethod(); i++ {
			m := typ.Method(i)
			for o := 0; o < m.Type.NumOut(); o++ {
				if m.Type.Out(o) == paramPage {
					t.Errorf("%v.%s now returns a *kernel.VDSOParamPage: the Timekeeper could be given the kernel's own param page; re-read docs/upstream-gaps.md (CLOCK_MONOTONIC of a restored container)", typ, m.Name)
				}
			}
		}
	}
}

// clockRoutePremises are the upstream functions whose code makes the one exported route to move a
// live sandbox's CLOCK_MONOTONIC unsafe (replaying upstream's restore on the live Timekeeper;
// docs/upstream-gaps.md, "CLOCK_MONOTONIC of a restored container"), with their fingerprints
// when the route was last examined:
//
//   - Timekeeper.GetTime panics when clocks and restored are both nil (the zeroed Timekeeper) and
//     reads clocks twice; SetClocks panics on a Timekeeper with clocks set and computes the
//     offset from saveMonotonic/saveRealtime only when restored is non-nil; afterLoad, the only
//     writer of restored, also replaces pausableClock (AfterFunc timers made before are lost);
//   - VDSOParamPage.incrementSeq fails when the page's sequence count is not the object's own;
//   - Kernel.resumeTimeLocked hands the kernel's own param page back to the Timekeeper (after a
//     gvisor-format checkpoint), Kernel.decRunningTasks drops the running-task reference;
//   - netstack.Stack.Pause pauses transport workers only, and control.Processes reads the
//     realtime clock for the host: readers that Kernel.Pause does not keep out.
//
// When a gVisor bump changes one, TestClockRoutePremises fails: re-read the function and the
// write-up (the reason may be gone), then update the fingerprint.
var clockRoutePremises = []upstreamsrc.Mirror{
	{File: "pkg/sentry/kernel/timekeeper.go", Func: "Timekeeper.GetTime", Ours: "docs/upstream-gaps.md (zeroed Timekeeper panics)", Fingerprint: "399dd3b227b12473"},
	{File: "pkg/sentry/kernel/timekeeper.go", Func: "Timekeeper.SetClocks", Ours: "docs/upstream-gaps.md (offset from saved fields)", Fingerprint: "466fcb6135b761df"},
	{File: "pkg/sentry/kernel/timekeeper.go", Func: "Timekeeper.Pause", Ours: "docs/upstream-gaps.md (what Pause stops)", Fingerprint: "310fc754f4c09f47"},
	{File: "pkg/sentry/kernel/timekeeper_state.go", Func: "Timekeeper.afterLoad", Ours: "docs/upstream-gaps.md (restored, pausableClock)", Fingerprint: "2899ed1a42073a92"},
	{File: "pkg/sentry/kernel/vdso.go", Func: "VDSOParamPage.incrementSeq", Ours: "docs/upstream-gaps.md (a second param page object)", Fingerprint: "131e2e79e698f67d"},
	{File: "pkg/sentry/kernel/kernel.go", Func: "Kernel.resumeTimeLocked", Ours: "docs/upstream-gaps.md (gvisor-format checkpoint after the swap)", Fingerprint: "0663d757c741f5c4"},
	{File: "pkg/sentry/kernel/kernel.go", Func: "Kernel.decRunningTasks", Ours: "docs/upstream-gaps.md (running-task reference)", Fingerprint: "747a0e8fa3687457"},
	{File: "pkg/tcpip/stack/stack.go", Func: "Stack.Pause", Ours: "docs/upstream-gaps.md (netstack not stoppable)", Fingerprint: "014804690c6d0fa4"},
	{File: "pkg/sentry/control/proc.go", Func: "Processes", Ours: "docs/upstream-gaps.md (host reads the clock)", Fingerprint: "6a39b4945adf6a90"},
}

// TestClockRoutePremises fails when a gVisor bump changes a function listed in clockRoutePremises.
func TestClockRoutePremises(t *testing.T) {
	for _, err := range upstreamsrc.CheckGVisorMirrors(clockRoutePremises) {
		t.Error(err)
	}
}

// bootTimePremises are the upstream functions behind what a restore that keeps the checkpointed
// sandbox's boot time continues and what it does not (docs/upstream-gaps.md, "CLOCK_MONOTONIC of
// a restored container"), with their fingerprints when they were last read:
//
//   - Timekeeper.SetClocks (clockRoutePremises) sets bootTime only in a sandbox that was not
//     restored; BootTime returns the field as is;
//   - /proc/uptime (uptimeData.Generate) is the realtime since BootTime, /proc/stat's btime
//     (statData.Generate) its seconds, /proc/PID/stat's starttime (taskStatData.Generate) the
//     task's StartTime minus BootTime;
//   - a task's startTime is the realtime when TaskSet.newTask made it (a thawed process's: the
//     restore's), inherited only by a thread that execs in place of its leader (promoteLocked).
//
// When a gVisor bump changes one, TestBootTimePremises fails: re-read the function and the
// write-up, then update the fingerprint.
var bootTimePremises = []upstreamsrc.Mirror{
	{File: "pkg/sentry/kernel/timekeeper.go", Func: "Timekeeper.BootTime", Ours: "docs/upstream-gaps.md (boot time kept as is)", Fingerprint: "a26b1477aa88f704"},
	{File: "pkg/sentry/fsimpl/proc/tasks_files.go", Func: "uptimeData.Generate", Ours: "docs/upstream-gaps.md (uptime from the boot time)", Fingerprint: "e7debcf52ffee96d"},
	{File: "pkg/sentry/fsimpl/proc/tasks_files.go", Func: "statData.Generate", Ours: "docs/upstream-gaps.md (btime from the boot time)", Fingerprint: "d82b3298ef2f0679"},
	{File: "pkg/sentry/fsimpl/proc/task_files.go", Func: "taskStatData.Generate", Ours: "docs/upstream-gaps.md (start times)", Fingerprint: "138a1ac1ad63b94c"},
	{File: "pkg/sentry/kernel/task_start.go", Func: "TaskSet.newTask", Ours: "docs/upstream-gaps.md (start time set at creation)", Fingerprint: "8092f90ac1064db6"},
	{File: "pkg/sentry/kernel/task_exec.go", Func: "Task.promoteLocked", Ours: "docs/upstream-gaps.md (start time inherited on exec only)", Fingerprint: "e73aa14f6f2cc9b5"},
}

// TestBootTimePremises fails when a gVisor bump changes a function listed in bootTimePremises.
func TestBootTimePremises(t *testing.T) {
	for _, err := range upstreamsrc.CheckGVisorMirrors(bootTimePremises) {
		t.Error(err)
	}
}

// TestTaskHasNoStartTimeSetter fails when *kernel.Task gains an exported method about its start
// time other than StartTime: if one sets it, a thaw could give each restored process its
// checkpointed start time (docs/upstream-gaps.md, "CLOCK_MONOTONIC of a restored container").
func TestTaskHasNoStartTimeSetter(t *testing.T) {
	typ := reflect.TypeOf(&kernel.Task{})
	var got []string
	for i := 0; i < typ.NumMethod(); i++ {
		if name := typ.Method(i).Name; strings.Contains(name, "StartTime") {
			got = append(got, name)
		}
	}
	if !slices.Equal(got, []string{"StartTime"}) {
		t.Errorf("*kernel.Task's start time methods are %q, were [StartTime]: if one sets it, use it in the thaw", got)
	}
}
