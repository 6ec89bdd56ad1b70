package ckpt

import (
	"testing"
	"time"
)

// TestRouteChooser: the two routes alternate over the warm-up, the cheaper is used after it
// with the other tried every routeExplore-th view, one outlier does not flip the choice, a lasting
// change of costs does, and small views are neither measured nor taken from the warm-up's turns.
func TestRouteChooser(t *testing.T) {
	for _, tc := range []struct {
		name       string
		pread, lnd time.Duration // per MiB
		want       viewRoute
	}{
		{"lend cheaper", 400 * time.Microsecond, 300 * time.Microsecond, routeLend},
		{"pread cheaper", 400 * time.Microsecond, 1500 * time.Microsecond, routePread},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c routeChooser
			const mib = 1 << 20
			if r, m := c.pick(4096); r != routePread || m {
				t.Fatalf("a small view before any measure: %v, measured %v", r, m)
			}
			costOf := func(r viewRoute) time.Duration {
				if r == routeLend {
					return tc.lnd
				}
				return tc.pread
			}
			seen := map[viewRoute]int{}
			for i := 0; i < 2*routeWarmup; i++ {
				r, m := c.pick(mib)
				if !m {
					t.Fatalf("warm-up view %d not measured", i)
				}
				seen[r]++
				c.record(r, mib, costOf(r))
			}
			if seen[routePread] != routeWarmup || seen[routeLend] != routeWarmup {
				t.Fatalf("warm-up routes %v, want %d each", seen, routeWarmup)
			}
			other := 0
			for i := 0; i < 4*routeExplore; i++ {
				r, _ := c.pick(mib)
				if r != tc.want {
					other++
				}
				c.record(r, mib, costOf(r))
			}
			if other < 3 || other > 5 {
				t.Errorf("the other route was tried %d times in %d views, want about %d", other, 4*routeExplore, 4)
			}
			if r, m := c.pick(4096); r != tc.want || m {
				t.Errorf("a small view: %v, measured %v; want %v unmeasured", r, m, tc.want)
			}
			// One view of the chosen route 10× dearer: no change.
			c.record(tc.want, mib, 10*costOf(tc.want))
			if c.best() != tc.want {
				t.Fatalf("one outlier flipped the choice")
			}
			// The chosen route becomes 10× dearer: the choice flips within a few views.
			flipped := false
			for i := 0; i < 4*routeExplore && !flipped; i++ {
				r, _ := c.pick(mib)
				d := costOf(r)
				if r == tc.want {
					d *= 10
				}
				c.record(r, mib, d)
				flipped = c.best() != tc.want
			}
			if !flipped {
				t.Errorf("the choice stayed %v after it became 10× dearer", tc.want)
			}
		})
	}
}

// TestRouteChooserStaleMedian: the cheaper route's warm-up samples were all 10× dearer than it
// (noise), so the chooser starts with the other; once the cheaper route costs what it should, the
// choice turns to it within one exploration interval and a median's worth of views, because each
// of its samples that beats the route in use has the next view try it again.
func TestRouteChooserStaleMedian(t *testing.T) {
	var c routeChooser
	const mib = 1 << 20
	pread, lnd := 400*time.Microsecond, 250*time.Microsecond
	for i := 0; i < 2*routeWarmup; i++ {
		r, _ := c.pick(mib)
		d := pread
		if r == routeLend {
			d = 10 * lnd
		}
		c.record(r, mib, d)
	}
	if c.best() != routePread {
		t.Fatalf("after a noisy warm-up of lend: %v, want pread", c.best())
	}
	views := 0
	for ; views < 4*routeExplore && c.best() != routeLend; views++ {
		r, _ := c.pick(mib)
		d := pread
		if r == routeLend {
			d = lnd
		}
		c.record(r, mib, d)
	}
	if c.best() != routeLend || views > routeExplore+routeSamples {
		t.Errorf("chose %v after %d views, want lend within %d", c.best(), views, routeExplore+routeSamples)
	}
}
