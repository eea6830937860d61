package rules

import (
	"cmp"
	"math"
	"slices"
)

// Entry is one route for NewIndex.
type Entry struct {
	Rule     *Rule // nil never matches
	Priority int   // higher wins; see DefaultPriority
	ID       int   // the caller's, returned by Match
}

// Index finds the highest-priority entry whose rule matches a request
// without testing every rule. It is immutable after NewIndex and safe for
// concurrent use.
//
// Each rule's required hosts and path prefix (see constraint) place it in a
// host bucket, or the any-host bucket, under its prefix in a radix tree. A
// lookup merges, in priority order, the candidates of the request's host
// bucket and of the any-host bucket whose prefix starts the request path,
// and returns the first whose program (see program) passes: exactly what a
// scan of all entries in priority order would return.
//
// Everything a lookup reads lives in a few flat slices, laid out bucket by
// bucket, so that a lookup in a table of 10,000 routes touches about as
// many cache lines as one in a table of 10.
type Index struct {
	rules []*Rule // in priority order; a rank is an index into rules
	ids   []int   // by rank

	hosts   hostTable // lowercase canonical host (see hostKey) to trie root
	anyHost int32     // trie root of the rules that name no host
	nodes   []tnode
	cands   []cand
	ops     []op
	ms      []matcher // the matchers ops call through the interface
	text    []byte    // host keys, labels and op strings, bucket by bucket

	scanOnly bool // the slices outgrew their 32-bit offsets; Match scans
}

// cand is a rule as listed under a trie node.
type cand struct {
	rank int32
	prog int32 // in Index.ops; noProgram when the lookup proves the rule
	id   int
}

// NewIndex orders entries by descending Priority, then descending length of
// the rule's source text, then ascending ID (then input order), and indexes
// them. It does not keep entries.
func NewIndex(entries []Entry) *Index {
	sorted := make([]Entry, 0, len(entries))
	for _, e := range entries {
		if e.Rule != nil {
			sorted = append(sorted, e)
		}
	}
	slices.SortStableFunc(sorted, compareEntries)
	if len(sorted) > math.MaxInt32 {
		sorted = sorted[:math.MaxInt32]
	}
	ix := &Index{rules: make([]*Rule, len(sorted)), ids: make([]int, len(sorted))}
	var p placement
	for i, e := range sorted {
		ix.rules[i], ix.ids[i] = e.Rule, e.ID
		p.place(int32(i), e.Rule)
	}
	ix.build(&p)
	return ix
}

func compareEntries(a, b Entry) int {
	if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
		return c
	}
	if c := cmp.Compare(len(b.Rule.src), len(a.Rule.src)); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// Len returns the number of entries indexed (those with a non-nil Rule).
func (ix *Index) Len() int {
	if ix == nil {
		return 0
	}
	return len(ix.rules)
}

// Match returns the ID of the highest-ordered entry whose rule matches req,
// and false when none does. It does not allocate when req's methods do not.
// A nil Index matches nothing.
func (ix *Index) Match(req Request) (id int, ok bool) {
	if ix == nil || len(ix.rules) == 0 {
		return 0, false
	}
	if ix.scanOnly {
		return ix.scan(req)
	}
	l := lookup{req: req, path: req.Path(), host: canonHost(req.Host())}
	var buf [maxHostKey]byte
	key, fits := hostKey(&buf, l.host)
	l.fits = fits
	var c cursors
	if fits && len(key) > 0 {
		if root := ix.hosts.find(ix.text, key); root >= 0 && !ix.collect(root, l.path, &c) {
			return ix.scan(req)
		}
	}
	if !ix.collect(ix.anyHost, l.path, &c) {
		return ix.scan(req)
	}
	for {
		at, more := c.next(ix.cands)
		if !more {
			return 0, false
		}
		if cd := &ix.cands[at]; cd.prog == noProgram || ix.eval(cd.prog, &l, key) {
			return cd.id, true
		}
	}
}

// scan tests every entry in order; the fallback for paths that cross more
// indexed prefixes than a lookup can merge, and for tables too large to lay
// out.
func (ix *Index) scan(req Request) (int, bool) {
	for i, r := range ix.rules {
		if r.Match(req) {
			return ix.ids[i], true
		}
	}
	return 0, false
}
