package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Resolver is the part of *net.Resolver that DNS needs.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// DNS re-resolves a host name on an interval and publishes every address
// it returns, as docker-compose does for a scaled service name.
//
// A failed lookup keeps the last known set: losing DNS for a moment must not
// empty a pool that is serving traffic.
type DNS struct {
	host     string
	port     uint16
	interval time.Duration
	resolver Resolver
	log      *slog.Logger
}

var _ Source = (*DNS)(nil)

// NewDNS returns a source for host:port re-resolved every interval. A nil
// resolver means net.DefaultResolver.
func NewDNS(host string, port uint16, interval time.Duration, r Resolver, log *slog.Logger) *DNS {
	if r == nil {
		r = net.DefaultResolver
	}
	if interval <= 0 {
		interval = 5 * time.Second
	}
	return &DNS{host: host, port: port, interval: interval, resolver: r, log: log}
}

// Run resolves at once and then every interval until ctx is done. It
// publishes only when the answer differs from the last one it published.
func (d *DNS) Run(ctx context.Context, publish func(Set)) error {
	var last Set
	first := true
	t := time.NewTicker(d.interval)
	defer t.Stop()
	for {
		set, err := d.resolve(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			d.log.Warn("dns lookup failed; keeping the last known backends",
				"host", d.host, "err", err)
			if first {
				publish(Set{})
				first = false
			}
		case err == nil && (first || !set.Equal(last)):
			publish(set)
			last, first = set, false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (d *DNS) resolve(ctx context.Context) (Set, error) {
	ctx, cancel := context.WithTimeout(ctx, d.interval)
	defer cancel()
	ips, err := d.resolver.LookupNetIP(ctx, "ip", d.host)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", d.host, err)
	}
	eps := make([]Endpoint, 0, len(ips))
	for _, ip := range ips {
		addr := net.JoinHostPort(ip.Unmap().String(), strconv.Itoa(int(d.port)))
		eps = append(eps, Endpoint{ID: addr, Addr: addr, Ready: true, Serving: true})
	}
	return Normalize(eps), nil
}
