package rules

import "bytes"

// maxCursors bounds how many rank lists one lookup merges. A path passes
// through one list per distinct indexed prefix it starts with, in each of
// two tries; more than this falls back to a full scan.
const maxCursors = 32

// cursors holds the rank lists a lookup merges; it lives on the caller's
// stack.
type cursors struct {
	lists [maxCursors][]int32
	n     int
}

// trie is a radix tree of required path prefixes. Each node lists, in
// ascending rank order, the entries whose prefix ends exactly there.
type trie struct {
	label  string // edge from the parent
	ranks  []int32
	firsts []byte // first byte of each kid's label, for IndexByte
	kids   []*trie
}

// insert adds rank under prefix. Ranks must be inserted in ascending order.
func (t *trie) insert(prefix string, rank int32) {
	n := t
	for prefix != "" {
		i := bytes.IndexByte(n.firsts, prefix[0])
		if i < 0 {
			n.firsts = append(n.firsts, prefix[0])
			n.kids = append(n.kids, &trie{label: prefix, ranks: []int32{rank}})
			return
		}
		k := n.kids[i]
		common := len(commonPrefix(k.label, prefix))
		if common < len(k.label) {
			split := &trie{label: k.label[:common], firsts: []byte{k.label[common]}, kids: []*trie{k}}
			k.label = k.label[common:]
			n.kids[i] = split
			k = split
		}
		prefix = prefix[common:]
		n = k
	}
	n.ranks = append(n.ranks, rank)
}

// collect appends to c the rank lists of every node whose prefix starts
// path. It reports false when c overflows.
func (t *trie) collect(path []byte, c *cursors) bool {
	n := t
	for {
		if len(n.ranks) > 0 {
			if c.n == maxCursors {
				return false
			}
			c.lists[c.n] = n.ranks
			c.n++
		}
		if len(path) == 0 {
			return true
		}
		i := bytes.IndexByte(n.firsts, path[0])
		if i < 0 {
			return true
		}
		k := n.kids[i]
		if len(path) < len(k.label) || string(path[:len(k.label)]) != k.label {
			return true
		}
		path = path[len(k.label):]
		n = k
	}
}

// next pops the smallest rank across all lists, or returns false when all
// are exhausted.
func (c *cursors) next() (int32, bool) {
	best := -1
	var rank int32
	for i := range c.n {
		l := c.lists[i]
		if len(l) > 0 && (best < 0 || l[0] < rank) {
			best, rank = i, l[0]
		}
	}
	if best < 0 {
		return 0, false
	}
	c.lists[best] = c.lists[best][1:]
	return rank, true
}
