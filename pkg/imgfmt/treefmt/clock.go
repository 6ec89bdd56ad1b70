package treefmt

// Clock is a sandbox's CLOCK_MONOTONIC and CLOCK_REALTIME, in nanoseconds, read by the sentry
// together (the kernel's MonotonicClock and RealtimeClock) while every process of a frozen tree
// was stopped, and its boot time.
//
// A restore uses it to continue the tree's CLOCK_MONOTONIC: the restored sandbox's clock starts at
// Monotonic plus the realtime that passed since Realtime (gVisor's Timekeeper.SetClocks adds it,
// nothing if the host's realtime went back) (runsc-ckpt's restore, "continue" mode),
// instead of near 0 as a new sandbox's does. The field is optional and adds no manifest version:
// a build that does not know it ignores it (encoding/json drops unknown fields) and restores the
// tree with the new sandbox's clock, which is what every build did before it was recorded — a
// weaker restore, not a wrong one.
type Clock struct {
	MonotonicNS int64 `json:"monotonic_ns"`
	RealtimeNS  int64 `json:"realtime_ns"`
	// BootRealtimeNS is the sandbox's boot time (the kernel Timekeeper's BootTime: the
	// CLOCK_REALTIME at which the sandbox started, nanoseconds since the epoch), which /proc/uptime,
	// /proc/stat's btime and the process start times in /proc/PID/stat are computed from. A
	// restore that continues the clock keeps it, so that the uptime continues too. 0 (omitted) in
	// manifests of older builds: the restored sandbox then keeps its own boot time.
	BootRealtimeNS int64 `json:"boot_realtime_ns,omitempty"`
}
