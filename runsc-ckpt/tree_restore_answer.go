package main

import "time"

// A restored sandbox whose init has exited can linger as an unreaped process: its parent, a
// detached run command, is gone, so container.Load still finds it running. What tells that it
// stopped is its control server, which no longer answers. The two loops that wait on a restore
// (waitInitName, waitRestored) share that rule through refusals, so that they cannot drift apart:
// once the command that runs the sandbox has returned, a control server that refuses every poll
// for refusalGrace means the sandbox has stopped. While the command runs, a refusal is only a
// sandbox still starting (its control server not up yet), and the command itself reports how it
// ended.

// refusalGrace is how long a control server may keep refusing, once no command is left, before
// the sandbox counts as stopped. A restore init that is alive answers well within it: its control
// server is up before the run command returns.
const refusalGrace = time.Second

// refusals watches a sandbox's control server over the polls of one wait. The zero value is ready.
type refusals struct {
	since time.Time // The first of the current run of refusals counted; zero when there is none.
}

// stopped records one poll made at now: err is the control server's answer (nil: it answered)
// and cmdDone whether the command that runs the sandbox has returned. It reports whether the
// server has now refused every poll for refusalGrace since the command returned.
func (r *refusals) stopped(err error, cmdDone bool, now time.Time) bool {
	if err == nil || !cmdDone {
		r.since = time.Time{}
		return false
	}
	if r.since.IsZero() {
		r.since = now
		return false
	}
	return now.Sub(r.since) >= refusalGrace
}
