package proxy

import (
	"net/netip"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/latch-proxy/latch/balancer"
)

// maxUnlisted bounds how many unlisted backends latch keeps connections
// for at once.
const maxUnlisted = 1024

// unlistedBackends lets a latch replica honour a valid sticky token for a
// pod its own EndpointSlice cache has not seen yet, because another replica
// saw it first and issued the cookie. Without it, every new pod's first
// sessions would move when they reach a slower replica.
//
// The token is authenticated, so its address was written by a latch with
// the same keys; the safety check only guards against a stale token whose
// address now belongs to something else: the address must be in the same
// /16 (IPv4) or /64 (IPv6) as a listed backend of the pool, on the same
// port. Upstreams are kept in a bounded LRU keyed by address, so their
// keep-alive pools survive across requests. Safe for concurrent use.
type unlistedBackends struct {
	newUpstream func(addr netip.AddrPort) *upstream
	once        sync.Once
	cache       *lru.Cache[netip.AddrPort, *upstream]
}

// resolve returns the upstream a valid token names when the pool allows it
// and the address passes the safety check, else nil. It runs only for
// tokens whose backend the table does not list: one extra verification.
func (u *unlistedBackends) resolve(p *pool, kr *balancer.Keyring, token []byte, now int64) *upstream {
	claims, err := kr.Open(token)
	if err != nil || !claims.Addr.IsValid() || !unlistedAllowed(p, claims.Addr) {
		return nil
	}
	if _, removed := p.gone[claims.IDDigest]; removed {
		return nil // it was listed and left: its clients move
	}
	u.once.Do(func() {
		// New only fails for a non-positive size.
		u.cache, _ = lru.NewWithEvict(maxUnlisted, func(_ netip.AddrPort, up *upstream) {
			up.client.CloseIdleConnections()
		})
	})
	up, ok := u.cache.Get(claims.Addr)
	if !ok {
		up = u.newUpstream(claims.Addr)
		if prev, loaded, _ := u.cache.PeekOrAdd(claims.Addr, up); loaded {
			up = prev
		}
	}
	if !up.backend.Up(now) {
		return nil
	}
	return up
}

// unlistedAllowed is the safety check: same port as, and in the same pod
// network as, some listed member.
func unlistedAllowed(p *pool, addr netip.AddrPort) bool {
	bits := 16
	if addr.Addr().Is6() {
		bits = 64
	}
	want, err := addr.Addr().Prefix(bits)
	if err != nil {
		return false
	}
	for i := range p.members {
		m := p.members[i].up.addr
		if m.Port() == addr.Port() && want.Contains(m.Addr()) {
			return true
		}
	}
	return false
}
