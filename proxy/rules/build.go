package rules

import "math"

// span is a range of one of the Index's slices. Offsets are 32 bits wide;
// an Index whose slices would outgrow them only scans (see Index.build).
type span struct{ off, n uint32 }

// placement is where NewIndex puts each rule, before the tries are laid out.
type placement struct {
	anyHost trie
	buckets map[string]*trie
	keys    []string // in order of first use, so buckets lie in rank order
	listed  int      // trie entries, one per rule and bucket
	textLen int      // an estimate of the text, to size it
}

// place puts rule r, of rank, under its prefix in the any-host trie or in
// the trie of every host key that it requires and that could match it.
// Ranks must be placed in ascending order.
func (p *placement) place(rank int32, r *Rule) {
	need := r.need
	p.textLen += len(r.src)
	if need.anyHost {
		p.anyHost.insert(need.prefix, rank)
		p.listed++
		return
	}
	for _, h := range need.hosts {
		// No rule with a host constraint matches an empty host (the Host
		// matcher refuses it), nor a key its HostRegexp affixes exclude.
		if h == "" || affixRejects(need, h) {
			continue
		}
		t := p.buckets[h]
		if t == nil {
			if p.buckets == nil {
				p.buckets = make(map[string]*trie)
			}
			t = &trie{}
			p.buckets[h] = t
			p.keys = append(p.keys, h)
			p.textLen += len(h)
		}
		t.insert(need.prefix, rank)
		p.listed++
	}
}

// affixRejects reports whether the host key alone rules out a rule with
// constraint need.
func affixRejects(need constraint, key string) bool {
	return len(key) < len(need.hostPrefix) || len(key) < len(need.hostSuffix) ||
		key[:len(need.hostPrefix)] != need.hostPrefix ||
		key[len(key)-len(need.hostSuffix):] != need.hostSuffix
}

// builder accumulates an Index's flat slices.
type builder struct {
	nodes []tnode
	cands []cand
	ops   []op
	ms    []matcher
	text  []byte

	// scratch is a stack of kid lists that emit reorders; each caller
	// truncates it to where it found it. queue is flatten's.
	scratch []*node
	queue   []*trie
}

// str appends s to the text and returns where it is.
func (b *builder) str(s string) span {
	sp := span{off: uint32(len(b.text)), n: uint32(len(s))}
	b.text = append(b.text, s...)
	return sp
}

// build lays out the tries of p bucket by bucket: a bucket's key, nodes,
// candidates and the programs of the rules it lists first sit together, so
// a lookup reads them from a few neighbouring cache lines. ix.rules and
// ix.ids must be filled in.
func (ix *Index) build(p *placement) {
	// Growing these slices would cost more than filling them; most rules
	// are a few ops, and most trie nodes hold a candidate.
	b := builder{
		nodes: make([]tnode, 0, p.listed+len(p.keys)+1),
		cands: make([]cand, 0, p.listed),
		ops:   make([]op, 0, 4*len(ix.rules)),
		text:  make([]byte, 0, p.textLen),
	}
	progs := make([]int32, len(ix.rules))
	for i := range progs {
		progs[i] = math.MinInt32 // not built yet
	}
	candidates := func(inHost bool) func([]int32) span {
		return func(ranks []int32) span {
			sp := span{off: uint32(len(b.cands)), n: uint32(len(ranks))}
			for _, r := range ranks {
				if progs[r] == math.MinInt32 {
					progs[r] = b.program(ix.rules[r], inHost)
				}
				b.cands = append(b.cands, cand{rank: r, prog: progs[r], id: ix.ids[r]})
			}
			return sp
		}
	}
	roots := make([]int32, len(p.keys))
	keys := make([]span, len(p.keys))
	for i, h := range p.keys {
		keys[i] = b.str(h)
		roots[i] = b.flatten(p.buckets[h], candidates(true))
	}
	ix.anyHost = b.flatten(&p.anyHost, candidates(false))
	if len(b.text) > math.MaxUint32 || len(b.cands) > math.MaxUint32 ||
		len(b.nodes) > math.MaxInt32 || len(b.ops) > math.MaxInt32 {
		ix.scanOnly = true
		return
	}
	ix.hosts = newHostTable(len(p.keys))
	for i := range p.keys {
		ix.hosts.add(b.text, keys[i], roots[i])
	}
	ix.nodes, ix.cands, ix.ops, ix.ms, ix.text = b.nodes, b.cands, b.ops, b.ms, b.text
}
