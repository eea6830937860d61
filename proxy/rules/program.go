package rules

import (
	"slices"
	"strings"
)

// A program is what is left of a rule to test once the Index has found it
// under the request's host key and path prefix: the rule with the Host and
// PathPrefix conjuncts that the lookup has already proven removed, and the
// common matchers flattened into ops whose strings sit in the Index's text
// next to the other rules of the same host. Testing a candidate then reads a
// few adjacent cache lines instead of a tree of pointers.
//
// Ops are laid out in prefix order; each op's end is the index just past its
// subtree, so an And or Or steps from kid to kid without pointers.
type op struct {
	kind opKind
	neg  bool   // the op's result is inverted (a Not folded in)
	end  int32  // index in Index.ops just past this op's subtree
	off  uint32 // a starts here in Index.text; for opMatcher, the index in Index.ms
	alen uint32 // a is text[off : off+alen]
	blen uint32 // b follows a: text[off+alen : off+alen+blen]
}

type opKind uint8

const (
	opAnd        opKind = iota // every kid; no kids is true
	opOr                       // any kid; no kids is false
	opHost                     // hostMatcher with the one host a
	opPathEq                   // the path is a
	opPathPrefix               // the path starts with a
	opMethod                   // the method is a (upper case), ignoring case
	opHeader                   // the first value of header a is b
	opHostAffix                // the host key starts with a and ends with b
	opMatcher                  // Index.ms[off] matches
)

// noProgram is the program of a rule the lookup has fully proven.
const noProgram = -1

// program appends the program that tests r on requests the index has
// already placed, and returns where it starts, or noProgram when nothing is
// left to test. inHost is true when r is only reached through host buckets
// whose key r's host constraint names (the lookup's key is never empty), so
// that Host conjuncts are proven; every r is reached only through trie
// nodes for exactly r.need.prefix, so prefixes of it are proven. Host-bucket
// rules drop the host affix test, which NewIndex applies to each bucket key
// instead.
func (b *builder) program(r *Rule, inHost bool) int32 {
	conj := []*node{r.root}
	if r.root.kind == nodeAnd {
		conj = r.root.kids
	}
	mark := len(b.scratch)
	defer func() { b.scratch = b.scratch[:mark] }()
	for _, k := range conj {
		if !proven(k, r.need, inHost) {
			b.scratch = append(b.scratch, k)
		}
	}
	keep := b.cheapFirst(b.scratch[mark:])
	affix := !inHost && (r.need.hostPrefix != "" || r.need.hostSuffix != "")
	n := len(keep)
	if affix {
		n++
	}
	if n == 0 {
		return noProgram
	}
	start := int32(len(b.ops))
	b.group(opAnd, n, func(i int) {
		if affix {
			if i == 0 {
				b.leaf(opHostAffix, r.need.hostPrefix, r.need.hostSuffix)
				return
			}
			i--
		}
		b.emit(keep[i])
	})
	return start
}

// proven reports whether conjunct k holds for every request the index
// hands r to (see program).
func proven(k *node, need constraint, inHost bool) bool {
	if k.kind != nodeMatch {
		return false
	}
	switch m := k.m.(type) {
	case *hostMatcher:
		// The lookup's key is a non-empty member of need.hosts. When m's
		// hosts are indexable, need.hosts lies within hostConstraint(m.hosts)
		// (an And intersects its conjuncts' host sets), and every
		// non-empty key listed there satisfies m.
		return inHost && indexable(m.hosts)
	case *pathMatcher:
		if len(m.exact) > 0 || len(m.ps) > 0 {
			return false
		}
		for _, p := range m.prefixes {
			if strings.HasPrefix(need.prefix, p) {
				return true
			}
		}
	}
	return false
}

// emit appends the ops of n.
func (b *builder) emit(n *node) {
	switch n.kind {
	case nodeAnd, nodeOr:
		mark := len(b.scratch)
		b.scratch = append(b.scratch, n.kids...)
		kind, kids := opAnd, b.cheapFirst(b.scratch[mark:])
		if n.kind == nodeOr {
			kind = opOr
		}
		b.group(kind, len(kids), func(i int) { b.emit(kids[i]) })
		b.scratch = b.scratch[:mark]
	case nodeNot:
		at := len(b.ops)
		b.emit(n.kids[0])
		b.ops[at].neg = !b.ops[at].neg
	default:
		b.emitMatcher(n.m)
	}
}

// cheapFirst sorts kids, a copy at the top of b.scratch, in ascending
// order of cost, stably, and returns it. Matchers have no side effects, so
// the order in which And and Or test their kids changes only how soon they
// can stop.
func (b *builder) cheapFirst(kids []*node) []*node {
	slices.SortStableFunc(kids, func(x, y *node) int { return cost(x) - cost(y) })
	return kids
}

// cost estimates what testing n takes: one per op, and more for a call
// through the matcher interface (regexps, queries, client addresses).
func cost(n *node) int {
	const call = 8
	if n.kind != nodeMatch {
		c := 1
		for _, k := range n.kids {
			c += cost(k)
		}
		return c
	}
	switch m := n.m.(type) {
	case *hostMatcher:
		return len(m.hosts)
	case *pathMatcher:
		return len(m.exact) + len(m.prefixes) + call*len(m.ps)
	case *methodMatcher:
		return len(m.methods)
	case *headerMatcher:
		c := 0
		for _, t := range m.tests {
			if t.re == nil && !t.any {
				c++
			} else {
				c += call
			}
		}
		return c
	}
	return call
}

// emitMatcher splits the common matchers into ops with their strings in
// the text; the rest are called through the matcher interface.
func (b *builder) emitMatcher(m matcher) {
	switch m := m.(type) {
	case *hostMatcher:
		b.group(opOr, len(m.hosts), func(i int) { b.leaf(opHost, m.hosts[i], "") })
	case *pathMatcher:
		exact, prefixes := len(m.exact), len(m.prefixes)
		n := exact + prefixes
		if len(m.ps) > 0 {
			n++
		}
		b.group(opOr, n, func(i int) {
			switch {
			case i < exact:
				b.leaf(opPathEq, m.exact[i], "")
			case i < exact+prefixes:
				b.leaf(opPathPrefix, m.prefixes[i-exact], "")
			default:
				b.call(&pathMatcher{ps: m.ps})
			}
		})
	case *methodMatcher:
		b.group(opOr, len(m.methods), func(i int) { b.leaf(opMethod, m.methods[i], "") })
	case *headerMatcher:
		b.group(opAnd, len(m.tests), func(i int) {
			if t := &m.tests[i]; t.re == nil && !t.any {
				b.leaf(opHeader, string(t.key), t.exact)
				return
			}
			b.call(&headerMatcher{tests: m.tests[i : i+1]})
		})
	default:
		b.call(m)
	}
}

// group appends an op of kind over n kids that kid appends, or the one kid
// alone.
func (b *builder) group(kind opKind, n int, kid func(i int)) {
	if n == 1 {
		kid(0)
		return
	}
	at := b.open(kind)
	for i := range n {
		kid(i)
	}
	b.close(at)
}

func (b *builder) open(kind opKind) int {
	b.ops = append(b.ops, op{kind: kind})
	return len(b.ops) - 1
}

func (b *builder) close(at int) { b.ops[at].end = int32(len(b.ops)) }

func (b *builder) leaf(kind opKind, a, c string) {
	off := b.str(a)
	b.str(c)
	b.ops = append(b.ops, op{kind: kind, end: int32(len(b.ops) + 1), off: off.off, alen: off.n, blen: uint32(len(c))})
}

func (b *builder) call(m matcher) {
	b.ops = append(b.ops, op{kind: opMatcher, end: int32(len(b.ops) + 1), off: uint32(len(b.ms))})
	b.ms = append(b.ms, m)
}
