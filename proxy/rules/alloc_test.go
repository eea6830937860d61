//go:build !race

package rules

import (
	"fmt"
	"testing"
)

func TestMatchDoesNotAllocate(t *testing.T) {
	tests := []struct {
		name, rule string
		req        *fakeRequest
	}{
		{"a host and prefix rule", "Host(`a.com`) && PathPrefix(`/api`)", req("A.com:80", "/api/x")},
		{"a v2 host template on an upper-case host", "HostRegexp(`{sub:[a-z]+}.a.com`)", req("API.A.COM", "/")},
		{"a v3 host regexp on a lower-case host", "HostRegexp(`^[a-z]+\\.a\\.com$`)", req("api.a.com", "/")},
		{"a path template", "Path(`/users/{id:[0-9]+}`)", req("a", "/users/42")},
		{"headers, queries and methods", "Header(`X-A`, `1`) && QueryRegexp(`q`, `^[0-9]+$`) && Method(`get`)",
			req("a", "/", header("x-a", "1"), query("q", "7"))},
		{"a client IP", "!ClientIP(`10.0.0.0/8`, `::1`)", req("a", "/", clientIP("192.168.1.1"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustParse(t, tt.rule)
			if !r.Match(tt.req) {
				t.Fatalf("%s does not match the request", tt.rule)
			}
			if n := testing.AllocsPerRun(100, func() { r.Match(tt.req) }); n != 0 {
				t.Errorf("Match allocates %v times per call", n)
			}
		})
	}
}

func TestIndexMatchDoesNotAllocate(t *testing.T) {
	var entries []Entry
	for i := range 1000 {
		rule := fmt.Sprintf("Host(`h%d.a.com`) && PathPrefix(`/s%d/`)", i%100, i)
		entries = append(entries, Entry{Rule: mustParse(t, rule), Priority: DefaultPriority(rule), ID: i})
	}
	entries = append(entries, Entry{Rule: mustParse(t, "PathPrefix(`/`)"), Priority: 1, ID: -1})
	ix := NewIndex(entries)
	for _, q := range []*fakeRequest{
		req("H42.a.com:443", "/s42/x"),
		req("h42.a.com", "/nothing"),
		req("unknown.host", "/s42/"),
	} {
		if _, ok := ix.Match(q); !ok {
			t.Fatalf("no match for %s%s", q.host, q.path)
		}
		if n := testing.AllocsPerRun(100, func() { ix.Match(q) }); n != 0 {
			t.Errorf("Index.Match for %s%s allocates %v times per call", q.host, q.path, n)
		}
	}
}
