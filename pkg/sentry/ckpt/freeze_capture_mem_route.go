package ckpt

import (
	"slices"
	"sync"
	"time"
)

// How a view's resident memory reaches the encoder is the machine's choice, not ours: either
// pread from the memory file into a buffer (two copies per byte: into the buffer, and from it
// into the image file), or lent straight from the sentry's own mapping of the memory file (one
// copy, the image file's write, but every page the sentry has not touched through its mapping yet
// must be mapped first: by one madvise per run since 2026-12-04, freeze_capture_mem_populate.go,
// before that by a fault per page in the encoder's zero-page scan). On a host where a page fault is
// cheap, lending is faster (1 GiB: 302–342 ms against 447–456 ms, 2026-12-04); on a VM with
// shadow page tables, where a first touch costs ~20 µs a page, it was 3–5× slower (2026-12-03;
// docs/notes-pause.md, "The writer"). So the writers measure: viewRoutes alternates the two
// routes over the first views it sees, then uses the one with the lower median cost per byte,
// trying the other again every routeExplore-th view so that a change (the sentry's mapping
// populated by then, another load) is noticed, and again at the next view while its samples beat
// the route in use.

// viewRoute is a way for ViewAt to hand resident memory to the encoder.
type viewRoute int

const (
	routePread viewRoute = iota // pread from the memory file into a buffer
	routeLend                   // the sentry's mapping, lent as is
	numRoutes
)

// String implements fmt.Stringer.
func (r viewRoute) String() string {
	if r == routeLend {
		return "lend"
	}
	return "pread"
}

const (
	// routeMinBytes is the least data a view must hold for its time to count: small views
	// are dominated by per-call costs.
	routeMinBytes = 256 << 10
	// routeWarmup is how many measured views each route gets before the cheaper is chosen.
	routeWarmup = 4
	// routeExplore: after the warm-up, every routeExplore-th measured view takes the other
	// route. Each such view costs what the dearer route costs more: with the sandbox's memory
	// in huge pages pread was 0.35–0.40 ns a byte against lending's 0.23–0.28 (2026-12-05), so
	// one view in 32 cost ~4 ms of a 1 GiB freeze's ~330; one in 64 costs ~2. Exploring
	// seldom would make a wrong choice last: the other route's median only changes as its
	// samples come in, and one freeze whose lend samples were noisy early read half its GiB
	// with pread when exploring one view in 128 (+80 ms). So a sample of the other route that
	// beats the route in use has the next view explore again (chase in routeChooser).
	routeExplore = 64
)

// routeChooser keeps, for each route, the cost per byte (nanoseconds) of the last routeSamples
// views it served (the pread or the faults, the encoder's scan, and the image file's writes), and
// the route in use. It is shared by every writer of the sandbox: the costs are the host's. The
// zero value is ready.
//
// The route in use changes only when the other's median cost is below routeSwitch times its own:
// a view's time includes the image file's write, which the host's writeback makes vary by 2×
// from one view to the next, and a moving average of such samples flipped the choice often
// enough (2026-12-04, 1 GiB: 4–25 % of the views read with the dearer route) to cost a third
// of the difference.
type routeChooser struct {
	mu sync.Mutex
	// n counts the measured views of each route.
	// +checklocks:mu
	n [numRoutes]int
	// samples holds each route's last routeSamples costs, a ring indexed by n.
	// +checklocks:mu
	samples [numRoutes][routeSamples]float64
	// cur is the route in use once both are warmed up.
	// +checklocks:mu
	cur viewRoute
	// picks counts the views picked for measurement, to schedule exploration.
	// +checklocks:mu
	picks int
	// chase asks the next measured view to take the other route: its last sample beat the
	// route in use, and its median (stale samples) has yet to show it.
	// +checklocks:mu
	chase bool
}

const (
	// routeSamples is how many recent costs a route's median is taken over.
	routeSamples = 8
	// routeSwitch: the other route is taken when its median is below this fraction of the
	// current route's.
	routeSwitch = 0.9
)

// viewRoutes is the sandbox's chooser. A package variable like viewBufs: what it learns is a
// property of the host, the same for every image.
var viewRoutes routeChooser

// pick returns the route for a view of dataBytes resident bytes, and whether its time is to be
// recorded.
func (c *routeChooser) pick(dataBytes int) (viewRoute, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if dataBytes < routeMinBytes {
		return c.cur, false
	}
	c.picks++
	if c.n[routePread] < routeWarmup || c.n[routeLend] < routeWarmup {
		if c.n[routeLend] < c.n[routePread] {
			return routeLend, true
		}
		return routePread, true
	}
	if c.chase || c.picks%routeExplore == 0 {
		c.chase = false
		return 1 - c.cur, true
	}
	return c.cur, true
}

// record adds a measured view: dataBytes resident bytes served by route r in d.
func (c *routeChooser) record(r viewRoute, dataBytes int, d time.Duration) {
	if dataBytes <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cost := float64(d.Nanoseconds()) / float64(dataBytes)
	c.samples[r][c.n[r]%routeSamples] = cost
	c.n[r]++
	if c.n[routePread] < routeWarmup || c.n[routeLend] < routeWarmup {
		return
	}
	if other := 1 - c.cur; c.medianLocked(other) < routeSwitch*c.medianLocked(c.cur) {
		c.cur = other
		c.chase = false
		return
	}
	if r != c.cur {
		c.chase = cost < routeSwitch*c.medianLocked(c.cur)
	}
}

// medianLocked returns route r's median recent cost, with c.mu held.
//
// +checklocks:c.mu
func (c *routeChooser) medianLocked(r viewRoute) float64 {
	k := min(c.n[r], routeSamples)
	if k == 0 {
		return 0
	}
	// A copy on the stack: record runs for every measured view, and a freeze should allocate
	// little (viewBufs).
	buf := c.samples[r]
	v := buf[:k]
	slices.Sort(v)
	if k%2 == 1 {
		return v[k/2]
	}
	return (v[k/2-1] + v[k/2]) / 2
}

// best returns the route in use (pread until both were measured).
func (c *routeChooser) best() viewRoute {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur
}

// snapshot returns the counts and median costs, for the freeze's log line.
func (c *routeChooser) snapshot() (n [numRoutes]int, cost [numRoutes]float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for r := range numRoutes {
		cost[r] = c.medianLocked(r)
	}
	return c.n, cost
}
