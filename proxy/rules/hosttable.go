package rules

import "hash/maphash"

// hostTable maps a lowercase host key to the root of its bucket's trie. It
// is an open-addressing table of 16-byte slots whose keys live in the
// Index's text next to the bucket they name, so a lookup reads one slot and
// then memory the match needs anyway, where a map[string] would chase a
// pointer to each key. It is immutable once built.
type hostTable struct {
	seed  maphash.Seed
	slots []hostSlot // a power of two, at most half full; nil when empty
}

type hostSlot struct {
	tag  uint32 // the hash's high half, to skip most key comparisons
	key  span   // in the text; n == 0 marks a free slot (keys are never empty)
	root int32  // index in Index.nodes
}

// newHostTable returns a table sized for n keys.
func newHostTable(n int) hostTable {
	if n == 0 {
		return hostTable{}
	}
	size := 1
	for size < 2*n {
		size *= 2
	}
	return hostTable{seed: maphash.MakeSeed(), slots: make([]hostSlot, size)}
}

// add records key, which must be non-empty, new, and stored in text at sp.
func (t *hostTable) add(text []byte, sp span, root int32) {
	h := maphash.Bytes(t.seed, text[sp.off:sp.off+sp.n])
	mask := uint64(len(t.slots) - 1)
	i := h & mask
	for t.slots[i].key.n != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = hostSlot{tag: uint32(h >> 32), key: sp, root: root}
}

// find returns the root for key, or -1.
func (t *hostTable) find(text, key []byte) int32 {
	if len(t.slots) == 0 {
		return -1
	}
	h := maphash.Bytes(t.seed, key)
	tag := uint32(h >> 32)
	mask := uint64(len(t.slots) - 1)
	for i := h & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.key.n == 0 {
			return -1
		}
		if s.tag == tag && string(text[s.key.off:s.key.off+s.key.n]) == string(key) {
			return s.root
		}
	}
}
