package rules

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchRoutes returns 5,000 routes shaped like a busy ingress: 250 hosts
// with 18 path-prefix routes and a catch-all each, plus 250 routes that
// do not name a host. Priorities default to rule length.
// siteRule is route p of host h in the benchmark tables: paths of three
// kinds in turn (a prefix, two hosts with two prefixes, a prefix or a
// method with a header).
func siteRule(h, p int) string {
	switch p % 3 {
	case 0:
		return fmt.Sprintf("Host(`h%d.example.com`) && PathPrefix(`/svc%d/`)", h, p)
	case 1:
		return fmt.Sprintf("Host(`h%d.example.com`, `www.h%d.example.com`) && PathPrefix(`/api/v%d`, `/api/x%d`)", h, h, p, p)
	default:
		return fmt.Sprintf("Host(`h%d.example.com`) && (PathPrefix(`/app%d`) || !Method(`POST`)) && Header(`X-Tenant`, `t%d`)", h, p, p)
	}
}

func benchRoutes(tb testing.TB) []Entry {
	tb.Helper()
	var rules []string
	for h := range 250 {
		for p := range 18 {
			rules = append(rules, siteRule(h, p))
		}
		rules = append(rules, fmt.Sprintf("Host(`h%d.example.com`)", h))
	}
	for i := range 250 {
		switch i % 5 {
		case 0:
			rules = append(rules, fmt.Sprintf("PathPrefix(`/static/%d/`)", i))
		case 1:
			rules = append(rules, fmt.Sprintf("HostRegexp(`^tenant%d-[a-z]+\\.example\\.net$`)", i))
		case 2:
			rules = append(rules, fmt.Sprintf("Path(`/hooks/%d/{id:[0-9]+}`)", i))
		case 3:
			rules = append(rules, fmt.Sprintf("Host(`legacy%d.example.org`) || Host(`old%d.example.org`)", i, i))
		default:
			rules = append(rules, fmt.Sprintf("PathPrefix(`/health%d`) && Method(`GET`)", i))
		}
	}
	entries := make([]Entry, len(rules))
	for i, src := range rules {
		r, err := Parse(src)
		if err != nil {
			tb.Fatal(err)
		}
		entries[i] = Entry{Rule: r, Priority: DefaultPriority(src), ID: i}
	}
	return entries
}

// benchRequests returns requests spread over the routes, with misses.
func benchRequests() []*fakeRequest {
	r := rand.New(rand.NewPCG(1, 1))
	reqs := make([]*fakeRequest, 1024)
	for i := range reqs {
		h := r.IntN(260) // some hosts are unknown
		host := fmt.Sprintf("h%d.example.com", h)
		var path string
		switch r.IntN(6) {
		case 0:
			path = fmt.Sprintf("/svc%d/users/1", r.IntN(20))
		case 1:
			path = fmt.Sprintf("/api/v%d/orders", r.IntN(20))
		case 2:
			path = fmt.Sprintf("/app%d/", r.IntN(20))
		case 3:
			path = fmt.Sprintf("/static/%d/app.js", 5*r.IntN(50))
			host = "cdn.example.com"
		case 4:
			path = fmt.Sprintf("/hooks/%d/42", 5*r.IntN(50)+2)
			host = "hooks.example.com"
		default:
			path = "/"
		}
		reqs[i] = req(host, path, header("X-Tenant", fmt.Sprintf("t%d", r.IntN(18))))
	}
	return reqs
}

func BenchmarkIndexMatch5000(b *testing.B) {
	benchMatch(b, NewIndex(benchRoutes(b)), benchRequests())
}

func BenchmarkLinearScan5000(b *testing.B) {
	benchMatch(b, newLinear(benchRoutes(b)), benchRequests())
}

// benchMatch matches the requests in turn (there are 1,024) for b.
func benchMatch(b *testing.B, m interface{ Match(Request) (int, bool) }, reqs []*fakeRequest) {
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.Match(reqs[i&1023])
		i++
	}
}

func BenchmarkNewIndex5000(b *testing.B) {
	entries := benchRoutes(b)
	b.ReportAllocs()
	for b.Loop() {
		NewIndex(entries)
	}
}

func BenchmarkParse(b *testing.B) {
	const rule = "Host(`a.com`, `b.com`) && (PathPrefix(`/api/{v:v[0-9]+}/`) || !Method(`POST`)) && Header(`X-A`, `1`)"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(rule); err != nil {
			b.Fatal(err)
		}
	}
}

func TestBenchRoutesAgreeWithLinearScan(t *testing.T) {
	entries := benchRoutes(t)
	ix, lin := NewIndex(entries), newLinear(entries)
	matched := 0
	for _, q := range benchRequests() {
		id, ok := ix.Match(q)
		lid, lok := lin.Match(q)
		if id != lid || ok != lok {
			t.Fatalf("%s%s: index = %d, %v; linear = %d, %v", q.host, q.path, id, ok, lid, lok)
		}
		if ok {
			matched++
		}
	}
	if matched < 512 {
		t.Errorf("only %d of 1024 benchmark requests match a route", matched)
	}
}
