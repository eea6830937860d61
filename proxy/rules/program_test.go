package rules

import (
	"strings"
	"testing"
)

// TestIndexSkipsOnlyWhatTheLookupProved checks the edges of program: a
// conjunct is left out only when the host bucket or the path prefix that
// found the rule implies it.
func TestIndexSkipsOnlyWhatTheLookupProved(t *testing.T) {
	long := strings.Repeat("long", 70) + ".com"
	tests := []struct {
		name, rule string
		req        *fakeRequest
		want       bool
	}{
		{"a proven Host leaves the Header to test", "Host(`a.com`) && Header(`X-A`, `1`)", req("a.com", "/"), false},
		{"a proven Host and PathPrefix match at once", "Host(`a.com`) && PathPrefix(`/api`)", req("A.COM.:80", "/api/x"), true},
		{"a lone dot does not match an empty host", "Host(`.`)", req("", "/"), false},
		{"a lone dot does not match a bare port", "Host(`.`)", req(":80", "/"), false},
		{"a lone dot matches two dots", "Host(`.`)", req("..", "/"), true},
		{"a negated Host is tested", "!Host(`a.com`) && PathPrefix(`/`)", req("a.com", "/"), false},
		{"a Host too long to index is tested in another host's bucket", "Host(`" + long + "`) && Host(`a.com`)", req("a.com", "/"), false},
		{"a conflicting PathPrefix is tested", "PathPrefix(`/a`) && PathPrefix(`/b`)", req("a", "/a/b"), false},
		{"a PathPrefix shorter than the indexed one is proven", "PathPrefix(`/a`) && PathPrefix(`/ab`)", req("a", "/abc"), true},
		{"a PathPrefix with several prefixes is tested", "Host(`a.com`) && PathPrefix(`/api/v1`, `/api/x1`)", req("a.com", "/api/y1"), false},
		{"an exact Path is tested", "Host(`a.com`) && Path(`/api`)", req("a.com", "/api/x"), false},
		{"a HostRegexp affix narrows the any-host bucket", "HostRegexp(`{s:[a-z]+}.a.com`) && PathPrefix(`/`)", req("X.B.COM", "/"), false},
		{"a HostRegexp affix keeps a bucket it fits", "Host(`x.a.com`) && HostRegexp(`{s:[a-z]+}.a.com`)", req("X.A.COM", "/"), true},
		{"a HostRegexp affix drops a bucket it excludes", "Host(`x.b.com`) && HostRegexp(`{s:[a-z]+}.a.com`)", req("x.b.com", "/"), false},
		{"a double negation cancels", "!!Method(`GET`) && Host(`a.com`)", req("a.com", "/"), true},
		{"a negated group is inverted once", "!(Method(`GET`) || Header(`X-A`, `1`)) && Host(`a.com`)", req("a.com", "/", method("POST")), true},
		{"two headers are asked for by name", "Host(`a.com`) && Header(`X-A`, `1`) && Header(`X-B`, `1`)", req("a.com", "/", header("X-A", "1")), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustParse(t, tt.rule)
			if got := r.Match(tt.req); got != tt.want {
				t.Fatalf("Rule.Match = %v, want %v", got, tt.want)
			}
			_, got := NewIndex([]Entry{{Rule: r, ID: 1}}).Match(tt.req)
			if got != tt.want {
				t.Errorf("Index.Match = %v, want %v", got, tt.want)
			}
		})
	}
}
