package test

import "testing"

// TestObjTimerFD: timerfds come back on their clocks (docs/notes-thaw.md, "timerfd, signalfd"): a
// monotonic timer re-armed with the time it had left, an expired one-shot with its unread
// expiration, a realtime timer with its absolute deadline and interval, a periodic timer that keeps
// firing; flags kept. New sandbox and same sandbox.
func TestObjTimerFD(t *testing.T) {
	runObjGuest(t, "obj_timerfd", "relative=1 pending=1 absolute=1 periodic=1 flags=1\n",
		"monotonic, disarmed, interval 0 ns, 1 expirations pending", "realtime, expires at ", "interval 5000000000 ns", "interval 20000000 ns")
}

// TestObjSignalFD: signalfds come back with their masks and flags and read the signals pending at
// the freeze and those sent after the thaw. New sandbox and same sandbox.
func TestObjSignalFD(t *testing.T) {
	runObjGuest(t, "obj_signalfd", "pending=1 mask=1 other=1 flags=1\n", "signalfd", "mask 0xa00", "mask 0x1")
}

// runObjGuest freezes test/guests/name (argument: the image path) and thaws it in a new sandbox
// and in the same one, on every platform; the thawed guest must print want after "r=1 errno=0",
// and inspect must show every string of inspectWant.
func runObjGuest(t *testing.T, name, want string, inspectWant ...string) {
	t.Helper()
	thawNewAndSame(t, objThaw{guest: h.BuildC(t, name), img: name + ".ckpt", want: "r=1 errno=0\n" + want, inspect: inspectWant, exec: true})
}
