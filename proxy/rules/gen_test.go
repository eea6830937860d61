package rules

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// A small vocabulary makes random rules and requests collide often, so the
// index is exercised on overlapping hosts, prefixes and ties.
var (
	genHosts   = []string{"a.com", "b.com", "A.com.", "c.org", "x.a.com", ".", strings.Repeat("long", 70) + ".com"}
	genPaths   = []string{"/", "/api", "/api/", "/api/v1", "/api/v1/users", "/socket.io", "/meta", "/x", "/xy"}
	genMethods = []string{"GET", "POST"}
)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// randomRule returns the text of a valid rule of at most depth levels.
func randomRule(r *rand.Rand, depth int) string {
	if depth > 0 && r.IntN(3) == 0 {
		op := " && "
		if r.IntN(2) == 0 {
			op = " || "
		}
		return "(" + randomRule(r, depth-1) + op + randomRule(r, depth-1) + ")"
	}
	if depth > 0 && r.IntN(8) == 0 {
		return "!" + randomRule(r, depth-1)
	}
	q := func(s string) string { return "`" + s + "`" }
	switch r.IntN(12) {
	case 0, 1, 2:
		if r.IntN(3) == 0 {
			return fmt.Sprintf("Host(%s, %s)", q(pick(r, genHosts)), q(pick(r, genHosts)))
		}
		return fmt.Sprintf("Host(%s)", q(pick(r, genHosts)))
	case 3:
		return fmt.Sprintf("HostRegexp(%s)", q(pick(r, []string{
			"{sub:[a-z]+}.a.com", `^[a-z]+\.a\.com$`, `a\.com`, "{x}.A.com", `^x\.`, `\.com\.$`,
		})))
	case 4:
		return fmt.Sprintf("Path(%s)", q(pick(r, genPaths)))
	case 5, 6, 7:
		if r.IntN(3) == 0 {
			return fmt.Sprintf("PathPrefix(%s, %s)", q(pick(r, genPaths)), q(pick(r, genPaths)))
		}
		return fmt.Sprintf("PathPrefix(%s)", q(pick(r, genPaths)))
	case 8:
		if r.IntN(2) == 0 {
			return fmt.Sprintf("PathRegexp(%s)", q(pick(r, []string{`^/api/v[0-9]/`, `users$`, `^/x$`})))
		}
		return fmt.Sprintf("PathPrefix(%s)", q("/api/{v:v[0-9]}/"))
	case 9:
		return fmt.Sprintf("Method(%s)", q(pick(r, genMethods)))
	case 10:
		return fmt.Sprintf("Header(%s, %s)", q(pick(r, []string{"X-A", "x-b"})), q(pick(r, []string{"1", "2"})))
	}
	return fmt.Sprintf("Query(%s)", q(pick(r, []string{"a=1", "a="})))
}

// randomRequest returns a request over the same vocabulary, with random
// case, ports and trailing dots on the host and random path suffixes.
func randomRequest(r *rand.Rand) *fakeRequest {
	host := pick(r, genHosts)
	if r.IntN(4) == 0 {
		host = strings.ToUpper(host)
	}
	if r.IntN(4) == 0 {
		host += "."
	}
	if r.IntN(4) == 0 {
		host += ":8080"
	}
	switch r.IntN(20) {
	case 0:
		host = strings.Repeat("h", maxHostKey+1)
	case 1:
		host = pick(r, []string{"", ":8080", "..", " A.com "})
	}
	path := pick(r, genPaths) + pick(r, []string{"", "", "/", "x", "/users", "/v2/x"})
	opts := []func(*fakeRequest){method(pick(r, genMethods))}
	if r.IntN(2) == 0 {
		opts = append(opts, header("X-A", pick(r, []string{"1", "2"})))
	}
	if r.IntN(2) == 0 {
		opts = append(opts, header("X-B", pick(r, []string{"1", "2"})))
	}
	if r.IntN(2) == 0 {
		opts = append(opts, query("a", pick(r, []string{"1", "2"})))
	}
	return req(host, path, opts...)
}

// randomEntries parses n random rules with priorities from a narrow range,
// so that ties on priority and on rule length are common.
func randomEntries(t testing.TB, r *rand.Rand, n int) []Entry {
	t.Helper()
	entries := make([]Entry, n)
	for i := range entries {
		src := randomRule(r, 3)
		rule, err := Parse(src)
		if err != nil {
			t.Fatalf("generated rule %q: %v", src, err)
		}
		p := DefaultPriority(src)
		if r.IntN(2) == 0 {
			p = r.IntN(3)
		}
		entries[i] = Entry{Rule: rule, Priority: p, ID: r.IntN(n)}
	}
	return entries
}

// linear is the reference the index must agree with: every entry in
// priority order, the first match wins.
type linear []Entry

func newLinear(entries []Entry) linear {
	l := slices.Clone(entries)
	slices.SortStableFunc(l, compareEntries)
	return l
}

func (l linear) Match(req Request) (int, bool) {
	for _, e := range l {
		if e.Rule.Match(req) {
			return e.ID, true
		}
	}
	return 0, false
}
