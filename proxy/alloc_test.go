//go:build !race

package proxy

import (
	"io"
	"testing"
)

// TestAStickyHitAllocatesNothing proxies keep-alive GETs with a sticky hit
// through latch's handler to a real backend and attributes every heap
// allocation to the function that made it. No function, latch's or
// fasthttp's, may allocate once per request: a body that arrives whole is
// not streamed (transport), which was fasthttp's four allocations.
func TestAStickyHitAllocatesNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		log  io.Writer
	}{{"without access log", nil}, {"with access log", io.Discard}} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHotPath(t, tc.log)
			for range 100 {
				h.do() // warm pools and buffers
			}
			const runs = 2000
			ours, total := 0, 0
			for site, n := range allocSites(runs, func() { h.do() }) {
				total += n
				// Like testing.AllocsPerRun, count whole allocations per
				// request: a pool refilled after a GC is amortised zero.
				if n/runs > 0 {
					t.Errorf("%s allocates %.2f times per request", site, float64(n)/runs)
				}
				if isLatch(site) {
					ours += n
				}
			}
			t.Logf("allocations per request: latch %.3f, all (fasthttp's included) %.2f",
				float64(ours)/runs, float64(total)/runs)
		})
	}
}
