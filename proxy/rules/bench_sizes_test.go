package rules

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// sizedRoutes returns n routes of benchRoutes' shape: per host, path
// prefixes of three kinds and a catch-all (19 routes), and one route in
// twenty that names no host.
func sizedRoutes(tb testing.TB, n int) (entries []Entry, hosts int) {
	tb.Helper()
	var rules []string
	for h := 0; len(rules) < n; h++ {
		hosts = h + 1
		if h%20 == 19 {
			rules = append(rules, fmt.Sprintf("PathPrefix(`/static/%d/`)", h))
			continue
		}
		for p := 0; p < 18 && len(rules) < n-1; p++ {
			switch p % 3 {
			case 0:
				rules = append(rules, fmt.Sprintf("Host(`h%d.example.com`) && PathPrefix(`/svc%d/`)", h, p))
			case 1:
				rules = append(rules, fmt.Sprintf("Host(`h%d.example.com`, `www.h%d.example.com`) && PathPrefix(`/api/v%d`, `/api/x%d`)", h, h, p, p))
			default:
				rules = append(rules, fmt.Sprintf("Host(`h%d.example.com`) && (PathPrefix(`/app%d`) || !Method(`POST`)) && Header(`X-Tenant`, `t%d`)", h, p, p))
			}
		}
		rules = append(rules, fmt.Sprintf("Host(`h%d.example.com`)", h))
	}
	entries = make([]Entry, len(rules))
	for i, src := range rules {
		r, err := Parse(src)
		if err != nil {
			tb.Fatal(err)
		}
		entries[i] = Entry{Rule: r, Priority: DefaultPriority(src), ID: i}
	}
	return entries, hosts
}

// sizedRequests spreads requests over the hosts that exist, with one in
// twenty to an unknown host, so that every size sees hits and misses in
// the same proportions.
func sizedRequests(hosts int) []*fakeRequest {
	r := rand.New(rand.NewPCG(2, 2))
	reqs := make([]*fakeRequest, 1024)
	for i := range reqs {
		h := r.IntN(hosts)
		if r.IntN(20) == 0 {
			h = hosts + r.IntN(100) // unknown
		}
		var path string
		switch r.IntN(4) {
		case 0:
			path = fmt.Sprintf("/svc%d/users/1", 3*r.IntN(6))
		case 1:
			path = fmt.Sprintf("/api/v%d/orders", 3*r.IntN(6)+1)
		case 2:
			path = fmt.Sprintf("/app%d/", 3*r.IntN(6)+2)
		default:
			path = "/"
		}
		reqs[i] = req(fmt.Sprintf("h%d.example.com", h), path, header("X-Tenant", fmt.Sprintf("t%d", r.IntN(18))))
	}
	return reqs
}

// BenchmarkIndexMatchSizes matches the same mix at 10, 1,000 and 10,000
// routes. The target: 10,000 routes cost under 2x what 10 cost.
func BenchmarkIndexMatchSizes(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			entries, hosts := sizedRoutes(b, n)
			benchMatch(b, NewIndex(entries), sizedRequests(hosts))
		})
	}
}

func TestSizedRoutesAgreeWithLinearScan(t *testing.T) {
	for _, n := range []int{10, 1000} {
		entries, hosts := sizedRoutes(t, n)
		if len(entries) != n {
			t.Fatalf("sizedRoutes(%d) made %d routes", n, len(entries))
		}
		ix, lin := NewIndex(entries), newLinear(entries)
		for _, q := range sizedRequests(hosts) {
			id, ok := ix.Match(q)
			lid, lok := lin.Match(q)
			if id != lid || ok != lok {
				t.Fatalf("%d routes, %s%s: index = %d, %v; linear = %d, %v", n, q.host, q.path, id, ok, lid, lok)
			}
		}
	}
}
