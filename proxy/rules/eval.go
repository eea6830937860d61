package rules

// lookup is one Match call's view of the request, computed once. The
// lowercase host key is passed to eval beside it rather than in it: it
// points into Match's stack, and l.req's method calls make escape analysis
// move whatever l points to onto the heap.
//
// A lookup asks the request for its method once, and for a header only
// when the last header it asked for had another name: the rules of one host
// tend to test the same header (a tenant, a canary flag), and Request's
// contract lets a Match reuse an answer.
type lookup struct {
	req  Request
	path []byte
	host []byte // canonical (canonHost), as sent
	fits bool   // the key fit hostKey's buffer

	method    []byte
	hasMethod bool
	hdrName   []byte // the last header asked for, in Index.text; nil at first
	hdrValue  []byte
}

// requestMethod returns req.Method(), asking once.
func (l *lookup) requestMethod() []byte {
	if !l.hasMethod {
		l.method, l.hasMethod = l.req.Method(), true
	}
	return l.method
}

// header returns req.Header(name), asking again only for a new name.
func (l *lookup) header(name []byte) []byte {
	if l.hdrName == nil || string(l.hdrName) != string(name) {
		l.hdrName, l.hdrValue = name, l.req.Header(name)
	}
	return l.hdrValue
}

// eval runs the program at pc on l, whose host key is key. It does not
// allocate when l.req's methods do not.
func (ix *Index) eval(pc int32, l *lookup, key []byte) bool {
	o := &ix.ops[pc]
	return ix.test(pc, o, l, key) != o.neg
}

// test is eval without o.neg.
func (ix *Index) test(pc int32, o *op, l *lookup, key []byte) bool {
	switch o.kind {
	case opAnd:
		for k := pc + 1; k < o.end; k = ix.ops[k].end {
			if !ix.eval(k, l, key) {
				return false
			}
		}
		return true
	case opOr:
		for k := pc + 1; k < o.end; k = ix.ops[k].end {
			if ix.eval(k, l, key) {
				return true
			}
		}
		return false
	case opHost:
		return hostEqualBytes(l.host, ix.a(o))
	case opPathEq:
		return string(l.path) == string(ix.a(o))
	case opPathPrefix:
		a := ix.a(o)
		return len(l.path) >= len(a) && string(l.path[:len(a)]) == string(a)
	case opMethod:
		return foldEqual(l.requestMethod(), ix.a(o))
	case opHeader:
		v := l.header(ix.a(o))
		return v != nil && string(v) == string(ix.b(o))
	case opHostAffix:
		if !l.fits {
			return true
		}
		a, b := ix.a(o), ix.b(o)
		return len(key) >= len(a) && len(key) >= len(b) &&
			string(key[:len(a)]) == string(a) && string(key[len(key)-len(b):]) == string(b)
	}
	return ix.ms[o.off].match(l.req)
}

// a and b return o's strings; their capacity ends with them, so a Request
// that appended to a header name could not write into the text.
func (ix *Index) a(o *op) []byte {
	end := o.off + o.alen
	return ix.text[o.off:end:end]
}

func (ix *Index) b(o *op) []byte {
	start := o.off + o.alen
	end := start + o.blen
	return ix.text[start:end:end]
}

// hostEqualBytes is hostEqual (with the empty-host check of hostMatcher)
// for a lowercase host held as bytes.
func hostEqualBytes(h, host []byte) bool {
	if len(h) == 0 {
		return false
	}
	if foldEqual(h, host) {
		return true
	}
	if last := len(host) - 1; last >= 0 && host[last] == '.' && foldEqual(h, host[:last]) {
		return true
	}
	last := len(h) - 1
	return h[last] == '.' && foldEqual(h[:last], host)
}

// foldEqual reports whether b equals s, ignoring ASCII case.
func foldEqual(b, s []byte) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lowerByte(b[i]) != lowerByte(s[i]) {
			return false
		}
	}
	return true
}
