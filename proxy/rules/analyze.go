package rules

import (
	"slices"
	"strings"
)

// constraint is what every request a node matches must have. The Index
// relies on it being a necessary condition, never a sufficient one: a rule
// is only ever skipped for requests it cannot match.
type constraint struct {
	// anyHost means the host is unconstrained; otherwise the lowercase
	// canonical request host must be one of hosts (sorted, unique). An
	// empty hosts with anyHost unset means no request can match.
	anyHost bool
	hosts   []string
	// hostPrefix and hostSuffix must start and end the lowercase canonical
	// request host (the text HostRegexp sees).
	hostPrefix, hostSuffix string
	// prefix must start the request path.
	prefix string
}

func (n *node) constraint() constraint {
	switch n.kind {
	case nodeAnd:
		c := constraint{anyHost: true}
		for _, k := range n.kids {
			c = c.and(k.constraint())
		}
		return c
	case nodeOr:
		c := n.kids[0].constraint()
		for _, k := range n.kids[1:] {
			c = c.or(k.constraint())
		}
		return c
	case nodeMatch:
		switch m := n.m.(type) {
		case *hostMatcher:
			return hostConstraint(m.hosts)
		case *pathMatcher:
			return constraint{anyHost: true, prefix: m.commonPrefix()}
		case *hostRegexpMatcher:
			c := constraint{anyHost: true, hostPrefix: m.ps[0].prefix, hostSuffix: m.ps[0].suffix}
			for _, p := range m.ps[1:] {
				c.hostPrefix = commonPrefix(c.hostPrefix, p.prefix)
				c.hostSuffix = commonSuffix(c.hostSuffix, p.suffix)
			}
			return c
		}
	}
	return constraint{anyHost: true}
}

// hostConstraint lists every canonical request host that Host(hosts...)
// accepts: each host, and the same without or with one trailing dot.
// Hosts too long for the Index's lookup buffer leave the host open.
func hostConstraint(hosts []string) constraint {
	if !indexable(hosts) {
		return constraint{anyHost: true}
	}
	var keys []string
	for _, h := range hosts {
		keys = append(keys, h, h+".")
		if strings.HasSuffix(h, ".") {
			keys = append(keys, h[:len(h)-1])
		}
	}
	slices.Sort(keys)
	return constraint{hosts: slices.Compact(keys)}
}

// indexable reports whether every key hostConstraint would list for hosts
// fits the Index's lookup buffer; the longest is a host with a dot added.
func indexable(hosts []string) bool {
	for _, h := range hosts {
		if len(h)+1 > maxHostKey {
			return false
		}
	}
	return true
}

// and combines the constraints of two conjuncts: both must hold.
func (c constraint) and(d constraint) constraint {
	// Both prefixes start any matching path, so the longer implies the
	// shorter; if they conflict nothing matches and either is right. The
	// same holds for host prefixes and suffixes.
	out := constraint{
		anyHost:    c.anyHost && d.anyHost,
		prefix:     longer(c.prefix, d.prefix),
		hostPrefix: longer(c.hostPrefix, d.hostPrefix),
		hostSuffix: longer(c.hostSuffix, d.hostSuffix),
	}
	switch {
	case c.anyHost:
		out.hosts = d.hosts
	case d.anyHost:
		out.hosts = c.hosts
	default:
		out.hosts = []string{}
		for _, h := range c.hosts {
			if _, found := slices.BinarySearch(d.hosts, h); found {
				out.hosts = append(out.hosts, h)
			}
		}
	}
	return out
}

// or combines the constraints of two disjuncts: either may hold.
func (c constraint) or(d constraint) constraint {
	out := constraint{
		anyHost:    c.anyHost || d.anyHost,
		prefix:     commonPrefix(c.prefix, d.prefix),
		hostPrefix: commonPrefix(c.hostPrefix, d.hostPrefix),
		hostSuffix: commonSuffix(c.hostSuffix, d.hostSuffix),
	}
	if !out.anyHost {
		out.hosts = append(slices.Clone(c.hosts), d.hosts...)
		slices.Sort(out.hosts)
		out.hosts = slices.Compact(out.hosts)
	}
	return out
}

func (m *pathMatcher) commonPrefix() string {
	var all []string
	all = append(all, m.exact...)
	all = append(all, m.prefixes...)
	for _, p := range m.ps {
		all = append(all, p.prefix)
	}
	if len(all) == 0 {
		return ""
	}
	p := all[0]
	for _, s := range all[1:] {
		p = commonPrefix(p, s)
	}
	return p
}

func commonPrefix(a, b string) string {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return a[:i]
		}
	}
	return a[:n]
}

func commonSuffix(a, b string) string {
	n := min(len(a), len(b))
	for i := range n {
		if a[len(a)-1-i] != b[len(b)-1-i] {
			return a[len(a)-i:]
		}
	}
	return a[len(a)-n:]
}

func longer(a, b string) string {
	if len(b) > len(a) {
		return b
	}
	return a
}
