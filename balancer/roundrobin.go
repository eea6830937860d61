package balancer

import "sync/atomic"

var _ Policy = (*RoundRobin)(nil)

// RoundRobin hands new sessions to the candidates in turn, ignoring load.
// A backend that is down is skipped and its turn goes to the next usable
// one. The zero value is ready to use; it must not be copied after first
// use.
type RoundRobin struct {
	_    noCopy
	next atomic.Uint64
}

// Pick implements Policy: O(1) when the backend whose turn it is is usable,
// O(len(candidates)) at worst.
func (p *RoundRobin) Pick(candidates []*Backend, now int64, skip *Backend) *Backend {
	n := len(candidates)
	if n == 0 {
		return nil
	}
	start := int((p.next.Add(1) - 1) % uint64(n))
	for i := range n {
		j := start + i
		if j >= n {
			j -= n
		}
		if b := candidates[j]; usable(b, skip, now) {
			return b
		}
	}
	return nil
}
