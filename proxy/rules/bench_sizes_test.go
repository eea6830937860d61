package rules

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// siteRoutes is how many routes one host ("site") gets in sizedRoutes: three
// of each kind of path route and a catch-all. A 10-route table is one whole
// site, so every size puts the same candidates in front of each request and
// the sizes differ only in how many sites the index must tell apart.
const siteRoutes = 10

// sizedRoutes returns n/siteRoutes sites on hosts h0.example.com, h1, ...,
// plus, after every twentieth site, one route that names no host (none at
// 10 routes, 5 at 1,000, 50 at 10,000). Priorities default to rule length,
// so on each host the Header routes come first and the catch-all last.
func sizedRoutes(tb testing.TB, n int) (entries []Entry, sites int) {
	tb.Helper()
	var rules []string
	for sites = 0; (sites+1)*siteRoutes <= n; sites++ {
		h := sites
		for p := range siteRoutes - 1 {
			rules = append(rules, siteRule(h, p))
		}
		rules = append(rules, fmt.Sprintf("Host(`h%d.example.com`)", h))
		if h%20 == 19 {
			rules = append(rules, fmt.Sprintf("PathPrefix(`/static/%d/`)", h))
		}
	}
	entries = make([]Entry, len(rules))
	for i, src := range rules {
		r, err := Parse(src)
		if err != nil {
			tb.Fatal(err)
		}
		entries[i] = Entry{Rule: r, Priority: DefaultPriority(src), ID: i}
	}
	return entries, sites
}

// sizedRequests spreads requests uniformly over the sites, with one in
// twenty to an unknown host. Paths and X-Tenant values are drawn from what
// every site routes, so at every size the same share of requests hits a
// Header route (one in three), a path route or the catch-all, or misses.
func sizedRequests(sites int) []*fakeRequest {
	r := rand.New(rand.NewPCG(2, 2))
	reqs := make([]*fakeRequest, 1024)
	for i := range reqs {
		h := r.IntN(sites)
		if r.IntN(20) == 0 {
			h = sites + r.IntN(100) // unknown
		}
		var path string
		switch r.IntN(4) {
		case 0:
			path = fmt.Sprintf("/svc%d/users/1", 3*r.IntN(3))
		case 1:
			path = fmt.Sprintf("/api/v%d/orders", 3*r.IntN(3)+1)
		case 2:
			path = fmt.Sprintf("/app%d/", 3*r.IntN(3)+2)
		default:
			path = "/"
		}
		reqs[i] = req(fmt.Sprintf("h%d.example.com", h), path, header("X-Tenant", fmt.Sprintf("t%d", r.IntN(siteRoutes-1))))
	}
	return reqs
}

// BenchmarkIndexMatchSizes matches the same mix at 10, 1,000 and 10,000
// routes. The target: 10,000 routes cost under 2x what 10 cost.
func BenchmarkIndexMatchSizes(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			entries, sites := sizedRoutes(b, n)
			benchMatch(b, NewIndex(entries), sizedRequests(sites))
		})
	}
}

func TestSizedRoutesAgreeWithLinearScan(t *testing.T) {
	for _, n := range []int{10, 1000} {
		entries, sites := sizedRoutes(t, n)
		if sites != n/siteRoutes || len(entries) != n+sites/20 {
			t.Fatalf("sizedRoutes(%d) made %d sites and %d routes", n, sites, len(entries))
		}
		ix, lin := NewIndex(entries), newLinear(entries)
		for _, q := range sizedRequests(sites) {
			id, ok := ix.Match(q)
			lid, lok := lin.Match(q)
			if id != lid || ok != lok {
				t.Fatalf("%d routes, %s%s: index = %d, %v; linear = %d, %v", n, q.host, q.path, id, ok, lid, lok)
			}
		}
	}
}

// TestSizedRequestsHitTheSameKindsOfRouteAtEverySize keeps the size
// benchmark honest: the share of requests answered by each kind of route,
// or by none, must not depend on the size of the table.
func TestSizedRequestsHitTheSameKindsOfRouteAtEverySize(t *testing.T) {
	kind := func(src string) string {
		switch {
		case strings.Contains(src, "Header("):
			return "header"
		case strings.Contains(src, "PathPrefix("):
			return "path"
		}
		return "catch-all"
	}
	var first map[string]int
	for _, n := range []int{10, 1000, 10000} {
		entries, sites := sizedRoutes(t, n)
		lin := newLinear(entries)
		shares := map[string]int{}
		for _, q := range sizedRequests(sites) {
			id, ok := lin.Match(q)
			if !ok {
				shares["miss"]++
				continue
			}
			shares[kind(entries[id].Rule.Source())]++
		}
		if first == nil {
			first = shares
			t.Logf("at %d routes, of 1024 requests: %v", n, shares)
			continue
		}
		for k, want := range first {
			if got := shares[k]; got < want-40 || got > want+40 {
				t.Errorf("at %d routes %d requests went to %s, at 10 routes %d", n, got, k, want)
			}
		}
	}
}
