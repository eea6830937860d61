package rules

import (
	"net/netip"
	"sync"
)

// matcher is one compiled matcher call. match must not allocate, keep req's
// slices, or modify them.
type matcher interface {
	match(req Request) bool
}

var (
	_ matcher = (*hostMatcher)(nil)
	_ matcher = (*hostRegexpMatcher)(nil)
	_ matcher = (*pathMatcher)(nil)
	_ matcher = (*methodMatcher)(nil)
	_ matcher = (*headerMatcher)(nil)
	_ matcher = (*queryMatcher)(nil)
	_ matcher = (*clientIPMatcher)(nil)
)

// hostMatcher holds lowercase hosts; it matches as Traefik does: the
// canonical request host equals a host, with one trailing dot on either
// side ignored.
type hostMatcher struct{ hosts []string }

func (m *hostMatcher) match(req Request) bool {
	h := canonHost(req.Host())
	if len(h) == 0 {
		return false
	}
	for _, host := range m.hosts {
		if hostEqual(h, host) {
			return true
		}
	}
	return false
}

func hostEqual(h []byte, host string) bool {
	if equalFold(h, host) {
		return true
	}
	if last := len(host) - 1; last >= 0 && host[last] == '.' && equalFold(h, host[:last]) {
		return true
	}
	last := len(h) - 1
	return last >= 0 && h[last] == '.' && equalFold(h[:last], host)
}

// hostRegexpMatcher matches the canonical request host, lowercased, against
// any of ps. Lowercasing an upper-case host needs a copy; bufs recycles
// those so that matching stays allocation-free.
type hostRegexpMatcher struct {
	ps   []pattern
	bufs *sync.Pool // of *[]byte
}

func newHostRegexpMatcher(ps []pattern) *hostRegexpMatcher {
	return &hostRegexpMatcher{ps: ps, bufs: &sync.Pool{New: func() any {
		b := make([]byte, 0, 64)
		return &b
	}}}
}

func (m *hostRegexpMatcher) match(req Request) bool {
	h := canonHost(req.Host())
	if !hasUpper(h) {
		return matchAny(m.ps, h)
	}
	bp := m.bufs.Get().(*[]byte)
	b := append((*bp)[:0], h...)
	for i, c := range b {
		b[i] = lowerByte(c)
	}
	ok := matchAny(m.ps, b)
	*bp = b
	m.bufs.Put(bp)
	return ok
}

// pathMatcher matches when the path equals one of exact, or starts with one
// of prefixes, or matches one of ps (templates and regexps).
type pathMatcher struct {
	exact    []string
	prefixes []string
	ps       []pattern
}

func (m *pathMatcher) match(req Request) bool {
	p := req.Path()
	for _, s := range m.exact {
		if string(p) == s {
			return true
		}
	}
	for _, s := range m.prefixes {
		if len(p) >= len(s) && string(p[:len(s)]) == s {
			return true
		}
	}
	return matchAny(m.ps, p)
}

// methodMatcher holds upper-case method names.
type methodMatcher struct{ methods []string }

func (m *methodMatcher) match(req Request) bool {
	got := req.Method()
	for _, want := range m.methods {
		if equalFoldASCII(got, want) {
			return true
		}
	}
	return false
}

// valueTest checks one header or query value: any value (present), an
// exact value, or a regular expression.
type valueTest struct {
	key   []byte
	any   bool
	exact string
	re    *pattern
}

func (t *valueTest) ok(v []byte) bool {
	switch {
	case t.any:
		return true
	case t.re != nil:
		return t.re.match(v)
	}
	return string(v) == t.exact
}

// headerMatcher requires every test to pass on the first value of its
// header; an absent header fails.
type headerMatcher struct{ tests []valueTest }

func (m *headerMatcher) match(req Request) bool {
	for i := range m.tests {
		t := &m.tests[i]
		v := req.Header(t.key)
		if v == nil || !t.ok(v) {
			return false
		}
	}
	return true
}

// queryMatcher requires every test to pass on the first value of its query
// parameter; an absent parameter fails.
type queryMatcher struct{ tests []valueTest }

func (m *queryMatcher) match(req Request) bool {
	for i := range m.tests {
		t := &m.tests[i]
		v, ok := req.Query(t.key)
		if !ok || !t.ok(v) {
			return false
		}
	}
	return true
}

// clientIPMatcher matches when the client address is in one of prefixes;
// IPv4-mapped IPv6 addresses count as IPv4.
type clientIPMatcher struct{ prefixes []netip.Prefix }

func (m *clientIPMatcher) match(req Request) bool {
	ip := req.ClientIP()
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap().WithZone("")
	for _, p := range m.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
