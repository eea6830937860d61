// Package discovery turns backend sources (static addresses, DNS names,
// Kubernetes EndpointSlices) into complete, immutable endpoint sets.
//
// A Source publishes the whole set every time it changes; consumers never
// see partial updates and never mutate what they receive. discovery knows
// nothing about HTTP, routing or balancing.
package discovery

import (
	"context"
	"slices"
	"strings"
)

// Endpoint is one backend address of a service together with the
// conditions Kubernetes reports for it. Static and DNS sources report
// every endpoint as ready and serving.
type Endpoint struct {
	// ID is the stable identity of the backend: the pod UID when
	// Kubernetes gives one, else the address. Sticky tokens are bound to it.
	ID string
	// Addr is the dialable "IP:PORT" (IPv6 in brackets).
	Addr string
	// Ready endpoints take new sessions.
	Ready bool
	// Serving endpoints may keep existing sessions, even while terminating.
	Serving bool
	// Terminating endpoints are draining: sticky traffic only.
	Terminating bool
}

// Set is the complete endpoint list of one service, sorted by ID. A
// published Set is immutable: neither the source nor any consumer may
// modify it.
type Set []Endpoint

// Source watches one service's endpoints.
type Source interface {
	// Run calls publish with the complete endpoint set at start and after
	// every change, until ctx is done. Calls to publish are sequential and
	// never pass an unchanged set twice in a row. Run returns nil when ctx
	// ends, or an error when the source cannot work at all.
	Run(ctx context.Context, publish func(Set)) error
}

// Normalize sorts endpoints by ID and collapses duplicates, keeping the
// non-terminating copy (as kube-proxy does). It returns a new Set and leaves
// its argument untouched.
func Normalize(eps []Endpoint) Set {
	out := slices.Clone(eps)
	slices.SortStableFunc(out, func(a, b Endpoint) int {
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		// Non-terminating first, so Compact keeps it.
		switch {
		case a.Terminating == b.Terminating:
			return 0
		case !a.Terminating:
			return -1
		default:
			return 1
		}
	})
	return slices.CompactFunc(out, func(a, b Endpoint) bool { return a.ID == b.ID })
}

// Equal reports whether two sets hold the same endpoints with the same
// conditions. A change of conditions alone is a change.
func (s Set) Equal(o Set) bool { return slices.Equal(s, o) }
