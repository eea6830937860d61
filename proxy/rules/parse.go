package rules

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// maxDepth bounds nesting of parentheses and negations, so that hostile
// rules cannot exhaust the stack in Parse, Match or String.
const maxDepth = 100

// ParseError says why a rule was rejected and where.
type ParseError struct {
	Rule   string // the rule as given to Parse
	Offset int    // byte offset in Rule of the offending token or argument
	Err    error  // what is wrong; wraps regexp and netip errors
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("rule %q: at %d: %v", e.Rule, e.Offset, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// Rule is a compiled rule. It is immutable and safe for concurrent use.
type Rule struct {
	src   string
	canon string
	root  *node
	need  constraint
}

// Parse compiles a Traefik rule in the v2 or v3 dialect. Every regular
// expression, template, CIDR and argument count is checked here, so a
// returned Rule cannot fail at match time. Errors are *ParseError.
func Parse(rule string) (*Rule, error) {
	p := parser{lx: lexer{src: rule}, src: rule}
	p.advance()
	if p.tok.kind == tokEOF {
		return nil, &ParseError{Rule: rule, Offset: p.tok.pos, Err: errors.New("empty rule")}
	}
	root, err := p.parseOr()
	if err == nil && p.tok.kind != tokEOF {
		err = p.fail("")
		if p.tok.kind != tokError {
			err = p.errorf(p.tok.pos, "unexpected %s after a complete expression", describe(p.tok))
		}
	}
	if err != nil {
		return nil, err
	}
	return &Rule{src: rule, canon: root.String(), root: root, need: root.constraint()}, nil
}

// Match reports whether req satisfies the rule. It does not allocate when
// req's methods do not. A nil Rule matches nothing.
func (r *Rule) Match(req Request) bool {
	return r != nil && r.root.eval(req)
}

// String returns the canonical form of the rule: canonical matcher names,
// single spaces around operators, only the parentheses precedence needs, and
// backtick-quoted arguments (double quotes when a value holds a backtick).
// Parsing it yields a Rule with the same String. A nil Rule prints "<nil>".
func (r *Rule) String() string {
	if r == nil {
		return "<nil>"
	}
	return r.canon
}

// Source returns the rule exactly as given to Parse; "" for a nil Rule.
func (r *Rule) Source() string {
	if r == nil {
		return ""
	}
	return r.src
}

// DefaultPriority is Traefik's priority for a rule that sets none: its length.
func DefaultPriority(rule string) int { return len(rule) }

type parser struct {
	lx    lexer
	src   string
	tok   token
	depth int
}

func (p *parser) advance() { p.tok = p.lx.next() }

func (p *parser) errorf(pos int, format string, args ...any) error {
	return &ParseError{Rule: p.src, Offset: pos, Err: fmt.Errorf(format, args...)}
}

// fail turns the current token into an error: the lexer's own when it
// could not lex, otherwise "expected what".
func (p *parser) fail(what string) error {
	if p.tok.kind == tokError {
		return &ParseError{Rule: p.src, Offset: p.tok.pos, Err: p.tok.err}
	}
	return p.errorf(p.tok.pos, "expected %s", what)
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return p.errorf(p.tok.pos, "nesting deeper than %d levels", maxDepth)
	}
	return nil
}

// parseOr parses a || b || ..., flattening nested disjunctions.
func (p *parser) parseOr() (*node, error) {
	first, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tokOr {
		return first, nil
	}
	n := &node{kind: nodeOr}
	n.adopt(first)
	for p.tok.kind == tokOr {
		p.advance()
		next, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		n.adopt(next)
	}
	return n, nil
}

// parseAnd parses a && b && ..., flattening nested conjunctions.
func (p *parser) parseAnd() (*node, error) {
	first, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tokAnd {
		return first, nil
	}
	n := &node{kind: nodeAnd}
	n.adopt(first)
	for p.tok.kind == tokAnd {
		p.advance()
		next, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		n.adopt(next)
	}
	return n, nil
}

func (p *parser) parseUnary() (*node, error) {
	switch p.tok.kind {
	case tokNot:
		if err := p.enter(); err != nil {
			return nil, err
		}
		p.advance()
		kid, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		p.depth--
		return &node{kind: nodeNot, kids: []*node{kid}}, nil
	case tokLParen:
		if err := p.enter(); err != nil {
			return nil, err
		}
		p.advance()
		inner, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tokRParen {
			return nil, p.fail(`"&&", "||" or ")"`)
		}
		p.advance()
		p.depth--
		return inner, nil
	case tokIdent:
		return p.parseMatcher()
	}
	return nil, p.fail(`a matcher, "!" or "("`)
}

func (p *parser) parseMatcher() (*node, error) {
	name, namePos := p.tok.text, p.tok.pos
	canon := canonicalName(name)
	if canon == "" {
		return nil, p.errorf(namePos, "unknown matcher %q", name)
	}
	p.advance()
	if p.tok.kind != tokLParen {
		return nil, p.fail(fmt.Sprintf(`"(" after %s`, name))
	}
	p.advance()
	var args []arg
	for p.tok.kind != tokRParen {
		if p.tok.kind != tokString {
			return nil, p.fail("a backtick or double-quoted string")
		}
		args = append(args, arg{val: p.tok.text, pos: p.tok.pos})
		p.advance()
		if p.tok.kind == tokComma {
			p.advance() // a trailing comma is valid Go, hence valid Traefik
			continue
		}
		if p.tok.kind != tokRParen {
			return nil, p.fail(`"," or ")" after an argument`)
		}
	}
	p.advance()
	m, pos, err := compile(canon, namePos, args)
	if err != nil {
		return nil, &ParseError{Rule: p.src, Offset: pos, Err: fmt.Errorf("%s: %w", canon, err)}
	}
	vals := make([]string, len(args))
	for i, a := range args {
		vals[i] = a.val
	}
	return &node{kind: nodeMatch, name: canon, args: vals, m: m}, nil
}

func describe(t token) string {
	switch t.kind {
	case tokIdent:
		return fmt.Sprintf("matcher %q", t.text)
	case tokString:
		return "string"
	case tokLParen:
		return `"("`
	case tokRParen:
		return `")"`
	case tokComma:
		return `","`
	case tokNot:
		return `"!"`
	case tokIllegal:
		r, _ := utf8.DecodeRuneInString(t.text)
		return fmt.Sprintf("character %q", r)
	}
	return "input"
}
