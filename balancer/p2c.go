package balancer

import (
	"math/rand/v2"
	"sync/atomic"
)

var _ Policy = (*P2C)(nil)

// P2C is "the power of two choices": look at two different candidates and
// take the one with the lower Load. It balances nearly as well as LeastConn
// in O(1) and, because the second look is random, separate latch replicas
// that each see only their own counters do not all rush to the same backend.
//
// The first choice rotates (as in RoundRobin) and the second is random
// among the others. With idle or equally loaded backends P2C therefore
// degrades to an even rotation rather than to coin flips.
//
// Randomness comes from a splitmix64 step over an atomic counter: one atomic
// add per pick, no lock, no allocation, and a sequence fixed by the seed
// (for tests). It is not cryptographic and needs not be. Use NewP2C; the
// zero value works but every zero-valued P2C draws the same sequence. It
// must not be copied after first use.
type P2C struct {
	_    noCopy
	seed uint64
	next atomic.Uint64
}

// NewP2C returns a P2C policy whose random choices are fixed by seed.
func NewP2C(seed uint64) *P2C { return &P2C{seed: seed} }

// randomSeed seeds policies that are not under test.
func randomSeed() uint64 { return rand.Uint64() }

// splitmix64 is the output function of Vigna's SplitMix64 generator.
func splitmix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Pick implements Policy: O(1) while the two looked-at backends are usable;
// a down one is replaced by the next usable candidate after it.
func (p *P2C) Pick(candidates []*Backend, now int64, skip *Backend) *Backend {
	n := len(candidates)
	if n == 0 {
		return nil
	}
	c := p.next.Add(1)
	i := int(c % uint64(n))
	a := firstUsable(candidates, i, now, skip)
	if a < 0 {
		return nil
	}
	if n == 1 {
		return candidates[a]
	}
	r := splitmix64(p.seed + c*0x9e3779b97f4a7c15)
	// j is uniform over the n-1 indexes other than i (Lemire's
	// multiply-shift keeps it free of a division).
	j := int((r >> 32) * uint64(n-1) >> 32)
	if j >= i {
		j++
	}
	b := firstUsable(candidates, j, now, skip)
	if b == a {
		// The second look ran into the first: take the next usable one.
		b = firstUsable(candidates, a+1, now, skip)
	}
	// b < 0 when a concurrent MarkDown emptied the list since a was
	// found; a was usable a moment ago and is as good an answer as any.
	if b >= 0 {
		if x, y := candidates[a], candidates[b]; y.Load() < x.Load() {
			return y
		}
	}
	return candidates[a]
}

// firstUsable returns the index of the first usable candidate at or after
// start, wrapping around, or -1 if there is none.
func firstUsable(candidates []*Backend, start int, now int64, skip *Backend) int {
	n := len(candidates)
	if start >= n {
		start -= n
	}
	for k := range n {
		j := start + k
		if j >= n {
			j -= n
		}
		if usable(candidates[j], skip, now) {
			return j
		}
	}
	return -1
}
