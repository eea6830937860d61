package rules

import "strings"

type nodeKind uint8

const (
	nodeMatch nodeKind = iota
	nodeAnd
	nodeOr
	nodeNot
)

// node is one element of a parsed rule. And and Or nodes hold at least two
// kids and never a kid of their own kind (the parser flattens those); a Not
// node holds one kid; a Match node holds a compiled matcher and the
// arguments it was written with.
type node struct {
	kind nodeKind
	kids []*node
	name string
	args []string
	m    matcher
}

// adopt appends kid, splicing in its kids when it has n's own kind, so that
// (a && b) && c and a && b && c give the same tree.
func (n *node) adopt(kid *node) {
	if kid.kind == n.kind {
		n.kids = append(n.kids, kid.kids...)
		return
	}
	n.kids = append(n.kids, kid)
}

func (n *node) eval(req Request) bool {
	switch n.kind {
	case nodeAnd:
		for _, k := range n.kids {
			if !k.eval(req) {
				return false
			}
		}
		return true
	case nodeOr:
		for _, k := range n.kids {
			if k.eval(req) {
				return true
			}
		}
		return false
	case nodeNot:
		return !n.kids[0].eval(req)
	}
	return n.m.match(req)
}

// precedence follows Go: ! binds tighter than &&, which binds tighter than ||.
func (n *node) precedence() int {
	switch n.kind {
	case nodeOr:
		return 1
	case nodeAnd:
		return 2
	}
	return 3
}

func (n *node) String() string {
	var b strings.Builder
	n.write(&b, 0)
	return b.String()
}

// write prints n, in parentheses when its precedence is below minPrec.
func (n *node) write(b *strings.Builder, minPrec int) {
	prec := n.precedence()
	if prec < minPrec {
		b.WriteByte('(')
		defer b.WriteByte(')')
	}
	switch n.kind {
	case nodeAnd, nodeOr:
		op := " && "
		if n.kind == nodeOr {
			op = " || "
		}
		for i, k := range n.kids {
			if i > 0 {
				b.WriteString(op)
			}
			k.write(b, prec)
		}
	case nodeNot:
		b.WriteByte('!')
		n.kids[0].write(b, 3)
	default:
		b.WriteString(n.name)
		b.WriteByte('(')
		for i, a := range n.args {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quoteArg(a))
		}
		b.WriteByte(')')
	}
}
