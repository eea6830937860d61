package balancer

import "sync/atomic"

var _ Policy = (*LeastConn)(nil)

// LeastConn picks the usable backend with the lowest Load, counting
// in-flight requests and open tunnels, so a long-lived WebSocket weighs on
// its backend and new pods fill up after a scale-out without anyone moving.
//
// Ties go to the first backend found from a start offset that rotates on
// every pick: equal-load backends share new sessions evenly instead of the
// first one in the list taking every burst that arrives before the counters
// move. The zero value is ready to use; it must not be copied after first
// use.
type LeastConn struct {
	_    noCopy
	next atomic.Uint64
}

// Pick implements Policy in O(len(candidates)).
func (p *LeastConn) Pick(candidates []*Backend, now int64, skip *Backend) *Backend {
	n := len(candidates)
	if n == 0 {
		return nil
	}
	start := int(p.next.Add(1) % uint64(n))
	var best *Backend
	var bestLoad int64
	for i := range n {
		j := start + i
		if j >= n {
			j -= n
		}
		b := candidates[j]
		if !usable(b, skip, now) {
			continue
		}
		if l := b.Load(); best == nil || l < bestLoad {
			best, bestLoad = b, l
		}
	}
	return best
}
