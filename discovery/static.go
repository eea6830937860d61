package discovery

import (
	"context"
	"net/netip"
)

// Static is a fixed list of addresses. It publishes once and then waits.
type Static struct {
	set Set
}

var _ Source = (*Static)(nil)

// NewStatic returns a source for the given addresses; each one is its own
// identity and is always ready.
func NewStatic(addrs []netip.AddrPort) *Static {
	eps := make([]Endpoint, 0, len(addrs))
	for _, a := range addrs {
		s := a.String()
		eps = append(eps, Endpoint{ID: s, Addr: s, Ready: true, Serving: true})
	}
	return &Static{set: Normalize(eps)}
}

// Run publishes the fixed set and blocks until ctx is done.
func (s *Static) Run(ctx context.Context, publish func(Set)) error {
	publish(s.set)
	<-ctx.Done()
	return nil
}
