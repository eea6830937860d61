package rules

import "bytes"

// maxCursors bounds how many rank lists one lookup merges. A path passes
// through one list per distinct indexed prefix it starts with, in each of
// two tries; more than this falls back to a full scan.
const maxCursors = 32

// cursors holds the candidate lists a lookup merges, as ranges of
// Index.cands; it lives on the caller's stack.
type cursors struct {
	lists [maxCursors]span
	n     int
}

// trie is a radix tree of required path prefixes, used only while an Index
// is built (see tnode for the form lookups read). Each node lists, in
// ascending rank order, the entries whose prefix ends exactly there.
type trie struct {
	label  string // edge from the parent
	ranks  []int32
	firsts []byte // first byte of each kid's label
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

// tnode is a trie node as lookups read it: one element of Index.nodes,
// with its strings in Index.text and its candidates in Index.cands. A
// node's kids are contiguous in Index.nodes, in the order of firsts.
type tnode struct {
	label  span // edge from the parent
	firsts span // first byte of each kid's label
	kids   int32
	cands  span // in ascending rank order
}

// flatten appends t to b breadth first and returns the root's index. cands
// appends the candidates for a node's ranks and returns their range.
func (b *builder) flatten(t *trie, cands func(ranks []int32) span) int32 {
	root := int32(len(b.nodes))
	b.nodes = append(b.nodes, tnode{})
	queue := append(b.queue[:0], t)
	defer func() { b.queue = queue[:0] }()
	for i := 0; i < len(queue); i++ {
		n := queue[i]
		at := root + int32(i)
		kids := int32(len(b.nodes))
		for _, k := range n.kids {
			b.nodes = append(b.nodes, tnode{label: b.str(k.label)})
		}
		queue = append(queue, n.kids...)
		b.nodes[at].kids = kids
		b.nodes[at].firsts = span{off: uint32(len(b.text)), n: uint32(len(n.firsts))}
		b.text = append(b.text, n.firsts...)
		b.nodes[at].cands = cands(n.ranks)
	}
	return root
}

// collect adds to c the candidate lists of every node under root whose
// prefix starts path. It reports false when c overflows.
func (ix *Index) collect(root int32, path []byte, c *cursors) bool {
	n := &ix.nodes[root]
	for {
		if n.cands.n > 0 {
			if c.n == maxCursors {
				return false
			}
			c.lists[c.n] = n.cands
			c.n++
		}
		if len(path) == 0 || n.firsts.n == 0 {
			return true
		}
		i := indexByte(ix.text[n.firsts.off:n.firsts.off+n.firsts.n], path[0])
		if i < 0 {
			return true
		}
		n = &ix.nodes[n.kids+int32(i)]
		label := ix.text[n.label.off : n.label.off+n.label.n]
		if len(path) < len(label) || string(path[:len(label)]) != string(label) {
			return true
		}
		path = path[len(label):]
	}
}

// next pops the candidate of smallest rank across all lists and returns its
// index in cands, or false when all lists are exhausted.
func (c *cursors) next(cands []cand) (int, bool) {
	best := -1
	var rank int32
	for i := range c.n {
		l := c.lists[i]
		if l.n > 0 && (best < 0 || cands[l.off].rank < rank) {
			best, rank = i, cands[l.off].rank
		}
	}
	if best < 0 {
		return 0, false
	}
	l := &c.lists[best]
	at := int(l.off)
	l.off++
	l.n--
	return at, true
}

// indexByte is bytes.IndexByte for the few bytes of a node's firsts, where
// a loop beats the call into assembly.
func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}
