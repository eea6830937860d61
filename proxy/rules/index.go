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
// lookup merges, in priority order, the entries of the request's host bucket
// and of the any-host bucket whose prefix starts the request path, and
// returns the first that matches: exactly what a scan of all entries in
// priority order would return.
type Index struct {
	slots   []slot           // in priority order; a rank is an index into slots
	hosts   map[string]*trie // by lowercase canonical host (see hostKey)
	anyHost trie
}

type slot struct {
	rule *Rule
	id   int
	// hostPrefix and hostSuffix are checked against the lookup's host key
	// before the rule, sparing HostRegexp rules most regexp runs.
	hostPrefix, hostSuffix string
}

// rejects reports whether the host key alone rules s out.
func (s *slot) rejects(key []byte) bool {
	return len(key) < len(s.hostPrefix) || len(key) < len(s.hostSuffix) ||
		string(key[:len(s.hostPrefix)]) != s.hostPrefix ||
		string(key[len(key)-len(s.hostSuffix):]) != s.hostSuffix
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
	ix := &Index{slots: make([]slot, 0, len(sorted)), hosts: make(map[string]*trie)}
	for _, e := range sorted {
		if len(ix.slots) == math.MaxInt32 {
			break
		}
		rank := int32(len(ix.slots))
		need := e.Rule.need
		ix.slots = append(ix.slots, slot{rule: e.Rule, id: e.ID, hostPrefix: need.hostPrefix, hostSuffix: need.hostSuffix})
		if need.anyHost {
			ix.anyHost.insert(need.prefix, rank)
			continue
		}
		for _, h := range need.hosts {
			t := ix.hosts[h]
			if t == nil {
				t = &trie{}
				ix.hosts[h] = t
			}
			t.insert(need.prefix, rank)
		}
	}
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
	return len(ix.slots)
}

// Match returns the ID of the highest-ordered entry whose rule matches req,
// and false when none does. It does not allocate. A nil Index matches
// nothing.
func (ix *Index) Match(req Request) (id int, ok bool) {
	if ix == nil || len(ix.slots) == 0 {
		return 0, false
	}
	var c cursors
	path := req.Path()
	var buf [maxHostKey]byte
	key, fits := hostKey(&buf, req.Host())
	if fits {
		if t := ix.hosts[string(key)]; t != nil && !t.collect(path, &c) {
			return ix.scan(req)
		}
	}
	if !ix.anyHost.collect(path, &c) {
		return ix.scan(req)
	}
	for {
		rank, more := c.next()
		if !more {
			return 0, false
		}
		s := &ix.slots[rank]
		if fits && s.rejects(key) {
			continue
		}
		if s.rule.Match(req) {
			return s.id, true
		}
	}
}

// scan tests every entry in order; the fallback for paths that cross more
// indexed prefixes than a lookup can merge.
func (ix *Index) scan(req Request) (int, bool) {
	for i := range ix.slots {
		if s := &ix.slots[i]; s.rule.Match(req) {
			return s.id, true
		}
	}
	return 0, false
}
