package rules

import "testing"

func TestMatchFollowsTraefikSemantics(t *testing.T) {
	tests := []struct {
		name string
		rule string
		req  *fakeRequest
		want bool
	}{
		{"host matches regardless of case", "Host(`Example.COM`)", req("example.com", "/"), true},
		{"host ignores the port of the request", "Host(`example.com`)", req("EXAMPLE.com:8443", "/"), true},
		{"host ignores a trailing dot on the request", "Host(`example.com`)", req("example.com.", "/"), true},
		{"host ignores a trailing dot in the rule", "Host(`example.com.`)", req("example.com", "/"), true},
		{"host does not match another host", "Host(`example.com`)", req("example.org", "/"), false},
		{"host does not match a subdomain", "Host(`example.com`)", req("www.example.com", "/"), false},
		{"host does not match an empty host", "Host(`example.com`)", req("", "/"), false},
		{"host matches a bracketed IPv6 literal with port", "Host(`::1`)", req("[::1]:80", "/"), true},
		{"v2 hosts match any of the list", "Host(`a.com`, `b.com`)", req("b.com", "/"), true},
		{"v2 host template matches its pattern", "HostRegexp(`{sub:[a-z]+}.example.com`)", req("api.example.com", "/"), true},
		{"v2 host template is anchored", "HostRegexp(`{sub:[a-z]+}.example.com`)", req("api.example.com.evil", "/"), false},
		{"v2 host template quotes literal dots", "HostRegexp(`{sub:[a-z]+}.example.com`)", req("api.exampleXcom", "/"), false},
		{"v2 host variable without pattern is one label", "HostRegexp(`{name}.example.com`)", req("a.b.example.com", "/"), false},
		{"v2 host regexp list takes literals exactly", "HostRegexp(`a.com`, `{x}.b.com`)", req("a.com", "/"), true},
		{"v3 host regexp sees the host lowercased without port", "HostRegexp(`^[a-z]+\\.example\\.com$`)", req("API.example.com:80", "/"), true},
		{"v3 host regexp is unanchored", "HostRegexp(`example`)", req("www.example.com", "/"), true},
		{"path matches exactly", "Path(`/foo`)", req("a", "/foo"), true},
		{"path does not match a longer path", "Path(`/foo`)", req("a", "/foo/bar"), false},
		{"v2 path template matches its pattern", "Path(`/users/{id:[0-9]+}`)", req("a", "/users/42"), true},
		{"v2 path template is anchored at the end", "Path(`/users/{id:[0-9]+}`)", req("a", "/users/42/x"), false},
		{"v2 path variable without pattern is one segment", "Path(`/users/{id}`)", req("a", "/users/a/b"), false},
		{"path prefix is a plain byte prefix", "PathPrefix(`/api`)", req("a", "/apiary"), true},
		{"path prefix does not match a shorter path", "PathPrefix(`/api/`)", req("a", "/api"), false},
		{"v2 path prefixes match any of the list", "PathPrefix(`/socket.io`, `/meta`)", req("a", "/meta/x"), true},
		{"v2 path prefix template matches a prefix", "PathPrefix(`/v{n:[0-9]}/`)", req("a", "/v2/users"), true},
		{"v3 path regexp is unanchored", "PathRegexp(`[0-9]+$`)", req("a", "/a/42"), true},
		{"v3 path regexp honours anchors", "PathRegexp(`^/[0-9]+$`)", req("a", "/a/42"), false},
		{"method matches regardless of case", "Method(`post`)", req("a", "/", method("POST")), true},
		{"method does not match another method", "Method(`POST`)", req("a", "/"), false},
		{"v2 methods match any of the list", "Method(`PUT`, `GET`)", req("a", "/"), true},
		{"header matches an exact value", "Header(`X-Env`, `prod`)", req("a", "/", header("x-env", "prod")), true},
		{"header name is case-insensitive", "Header(`x-env`, `prod`)", req("a", "/", header("X-Env", "prod")), true},
		{"header value is case-sensitive", "Header(`X-Env`, `prod`)", req("a", "/", header("X-Env", "Prod")), false},
		{"header does not match when absent", "Header(`X-Env`, `prod`)", req("a", "/"), false},
		{"v2 headers match all pairs", "Headers(`A`, `1`, `B`, `2`)", req("a", "/", header("A", "1"), header("B", "2")), true},
		{"v2 headers fail when one pair fails", "Headers(`A`, `1`, `B`, `2`)", req("a", "/", header("A", "1"), header("B", "3")), false},
		{"header regexp is unanchored", "HeaderRegexp(`User-Agent`, `bot`)", req("a", "/", header("User-Agent", "a bot b")), true},
		{"v2 headers regexp matches", "HeadersRegexp(`X-A`, `^[0-9]+$`)", req("a", "/", header("X-A", "123")), true},
		{"header regexp fails when the header is absent", "HeaderRegexp(`X-A`, `.*`)", req("a", "/"), false},
		{"v3 query matches key and value", "Query(`mobile`, `true`)", req("a", "/", query("mobile", "true")), true},
		{"v3 query does not match another value", "Query(`mobile`, `true`)", req("a", "/", query("mobile", "false")), false},
		{"v3 query with a key alone wants an empty value", "Query(`debug`)", req("a", "/", query("debug", "")), true},
		{"v3 query with a key alone rejects a value", "Query(`debug`)", req("a", "/", query("debug", "1")), false},
		{"v3 query regexp matches the value", "QueryRegexp(`id`, `^[0-9]+$`)", req("a", "/", query("id", "42")), true},
		{"v3 query regexp needs the key", "QueryRegexp(`id`, `.*`)", req("a", "/"), false},
		{"v2 query matches all pairs", "Query(`a=1`, `b=2`)", req("a", "/", query("a", "1"), query("b", "2")), true},
		{"v2 query fails when one pair is missing", "Query(`a=1`, `b=2`)", req("a", "/", query("a", "1")), false},
		{"v2 query with an empty value wants the key only", "Query(`a=`)", req("a", "/", query("a", "anything")), true},
		{"v2 query with an empty value still wants the key", "Query(`a=`)", req("a", "/", query("b", "1")), false},
		{"v2 query value templates are anchored", "Query(`id={id:[0-9]+}`)", req("a", "/", query("id", "42x")), false},
		{"client IP matches a CIDR", "ClientIP(`10.0.0.0/8`)", req("a", "/", clientIP("10.1.2.3")), true},
		{"client IP matches an IPv4-mapped address", "ClientIP(`10.0.0.0/8`)", req("a", "/", clientIP("::ffff:10.1.2.3")), true},
		{"client IP matches a single address of the list", "ClientIP(`10.0.0.0/8`, `::1`)", req("a", "/", clientIP("::1")), true},
		{"client IP does not match outside the CIDR", "ClientIP(`10.0.0.0/8`)", req("a", "/", clientIP("11.0.0.1")), false},
		{"client IP does not match an unknown client", "ClientIP(`0.0.0.0/0`)", req("a", "/"), false},
		{"and needs both sides", "Host(`a`) && PathPrefix(`/x`)", req("a", "/y"), false},
		{"or needs either side", "Host(`b`) || PathPrefix(`/x`)", req("a", "/x"), true},
		{"not inverts", "!Host(`a`)", req("b", "/"), true},
		{"not binds tighter than and", "!Host(`a`) && Path(`/`)", req("a", "/"), false},
		{"a grouped alternative under a host", "Host(`a`) && (PathPrefix(`/x`) || !Method(`POST`))", req("a", "/y", method("POST")), false},
		{"a grouped alternative takes its negated branch", "Host(`a`) && (PathPrefix(`/x`) || !Method(`POST`))", req("a", "/y"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(tt.rule)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Match(tt.req); got != tt.want {
				t.Errorf("%s matching host %q path %q = %v, want %v", tt.rule, tt.req.host, tt.req.path, got, tt.want)
			}
		})
	}
}

func TestNilRuleMatchesNothing(t *testing.T) {
	var r *Rule
	if r.Match(req("a", "/")) {
		t.Error("a nil rule matched")
	}
}
