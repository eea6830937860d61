// Package balancer holds the live state of upstream backends, the policies
// that choose a backend for a new session, and the sticky token that keeps a
// session on its backend afterwards.
//
// It works on plain values (strings, netip addresses, unix nanoseconds) and
// imports neither the HTTP server nor discovery, so everything here can be
// tested without a socket. The hot-path entry points (Policy.Pick,
// Keyring.Open, Backend counters) allocate nothing and take no locks.
package balancer

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
)

// noCopy makes go vet's copylocks check flag copies of the structs that
// embed it: their atomics must stay at one address.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}

// Backend is the live state of one upstream endpoint. It is created once per
// identity and carried across routing snapshots, so counters survive config
// and endpoint changes. Safe for concurrent use; must not be copied.
type Backend struct {
	_ noCopy

	id   string
	addr string
	ap   netip.AddrPort

	// inflight counts in-flight requests plus open tunnels.
	inflight atomic.Int64
	// downUntil is the unix-nano instant before which passive health
	// considers the backend unusable; 0 means never marked down.
	downUntil atomic.Int64
}

// NewBackend returns the state for the backend with the given identity (the
// pod UID where Kubernetes gives one, else the address) and dialable address
// ("IP:PORT", IPv6 in brackets). Both are immutable afterwards.
func NewBackend(id, addr string) *Backend {
	b := &Backend{id: id, addr: addr}
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		b.ap = ap
	}
	return b
}

// ID returns the backend's identity.
func (b *Backend) ID() string { return b.id }

// Addr returns the dialable address as given to NewBackend.
func (b *Backend) Addr() string { return b.addr }

// AddrPort returns Addr parsed as a literal IP and port, or the zero
// AddrPort when Addr is a host name or malformed.
func (b *Backend) AddrPort() netip.AddrPort { return b.ap }

// Acquire counts one more in-flight request or open tunnel. Every Acquire
// must be paired with exactly one Release.
func (b *Backend) Acquire() { b.inflight.Add(1) }

// Release ends what Acquire counted.
func (b *Backend) Release() { b.inflight.Add(-1) }

// Load returns the current number of in-flight requests plus open tunnels.
func (b *Backend) Load() int64 { return b.inflight.Load() }

// MarkDown records a passive health failure (a dial failed): the backend is
// not Up before until (unix nanoseconds). Concurrent calls keep the latest
// deadline, so a short back-off never shortens a longer one.
func (b *Backend) MarkDown(until int64) {
	for {
		cur := b.downUntil.Load()
		if until <= cur || b.downUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

// MarkUp clears a MarkDown, for instance after a successful request.
func (b *Backend) MarkUp() { b.downUntil.Store(0) }

// DownUntil returns the instant (unix nanoseconds) before which the backend
// is marked down; 0 if it never was.
func (b *Backend) DownUntil() int64 { return b.downUntil.Load() }

// Up reports whether the backend is not marked down at now (unix nanos).
func (b *Backend) Up(now int64) bool { return now >= b.downUntil.Load() }

// usable is the filter every policy applies: present, not the one to skip,
// and not marked down.
func usable(b, skip *Backend, now int64) bool {
	return b != nil && b != skip && b.Up(now)
}

// Policy picks a backend for a new session.
//
// Pick chooses among candidates, skipping nil entries, backends that are not
// Up(now), and skip (nil skips nothing). skip serves "retry once on another
// backend": pass the backend that just failed. Pick returns nil when nothing
// is usable; it never returns skip, even if skip is the only backend left.
//
// Implementations are safe for concurrent use, allocate nothing, take no
// locks and never modify candidates. Existing sessions never go through a
// Policy: stickiness is decided before it.
type Policy interface {
	Pick(candidates []*Backend, now int64, skip *Backend) *Backend
}

// Policy names accepted by NewPolicy.
const (
	LeastConnName  = "leastconn"
	RoundRobinName = "roundrobin"
	P2CName        = "p2c"
)

// ErrUnknownPolicy is wrapped by NewPolicy for a name it does not know.
var ErrUnknownPolicy = errors.New("unknown balancing strategy")

// NewPolicy returns a fresh policy (with its own counters) by name:
// "leastconn" (also for ""), "roundrobin" (also Traefik's "wrr"; weights are
// not supported) or "p2c". Names are case-insensitive. An unknown name gives
// an error wrapping ErrUnknownPolicy that lists the valid ones.
func NewPolicy(name string) (Policy, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "", LeastConnName:
		return new(LeastConn), nil
	case RoundRobinName, "wrr":
		return new(RoundRobin), nil
	case P2CName:
		return NewP2C(randomSeed()), nil
	}
	return nil, fmt.Errorf("%w %q: want %s, %s or %s",
		ErrUnknownPolicy, name, LeastConnName, RoundRobinName, P2CName)
}

// PolicyNames returns the canonical names NewPolicy accepts, default first.
func PolicyNames() []string {
	return []string{LeastConnName, RoundRobinName, P2CName}
}
