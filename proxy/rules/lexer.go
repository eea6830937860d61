package rules

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

type tokKind uint8

const (
	tokEOF tokKind = iota
	tokIdent
	tokString
	tokLParen
	tokRParen
	tokComma
	tokAnd
	tokOr
	tokNot
	tokIllegal // a character that starts no token; text holds it
	tokError   // a malformed token; err says why
)

// token is one lexeme. text holds an identifier, or the decoded value of a
// string; err is set for tokError.
type token struct {
	kind tokKind
	pos  int
	text string
	err  error
}

// lexer splits a rule into tokens on demand. It never reads past src and
// reports every malformed lexeme as a tokError.
type lexer struct {
	src string
	pos int
}

func (l *lexer) next() token {
	for l.pos < len(l.src) && isSpace(l.src[l.pos]) {
		l.pos++
	}
	start := l.pos
	if start >= len(l.src) {
		return token{kind: tokEOF, pos: start}
	}
	c := l.src[start]
	switch {
	case c == '(':
		l.pos++
		return token{kind: tokLParen, pos: start}
	case c == ')':
		l.pos++
		return token{kind: tokRParen, pos: start}
	case c == ',':
		l.pos++
		return token{kind: tokComma, pos: start}
	case c == '!':
		l.pos++
		return token{kind: tokNot, pos: start}
	case c == '&' || c == '|':
		if start+1 < len(l.src) && l.src[start+1] == c {
			l.pos += 2
			if c == '&' {
				return token{kind: tokAnd, pos: start}
			}
			return token{kind: tokOr, pos: start}
		}
		return l.fail(start, fmt.Errorf("expected %q", string([]byte{c, c})))
	case c == '`':
		return l.raw(start)
	case c == '"':
		return l.quoted(start)
	case c == '\'':
		return l.fail(start, errors.New("single quotes are not allowed; use backticks or double quotes"))
	case isIdentStart(c):
		for l.pos < len(l.src) && isIdentPart(l.src[l.pos]) {
			l.pos++
		}
		return token{kind: tokIdent, pos: start, text: l.src[start:l.pos]}
	}
	_, size := utf8.DecodeRuneInString(l.src[start:])
	l.pos += size
	return token{kind: tokIllegal, pos: start, text: l.src[start:l.pos]}
}

// fail reports err and moves to the end of the input: a parser stops at the
// first error, so nothing after it needs lexing.
func (l *lexer) fail(pos int, err error) token {
	l.pos = len(l.src)
	return token{kind: tokError, pos: pos, err: err}
}

func (l *lexer) raw(start int) token {
	for i := start + 1; i < len(l.src); i++ {
		if l.src[i] == '`' {
			l.pos = i + 1
			return token{kind: tokString, pos: start, text: l.src[start+1 : i]}
		}
	}
	return l.fail(start, errors.New("unterminated backtick string"))
}

func (l *lexer) quoted(start int) token {
	for i := start + 1; i < len(l.src); i++ {
		switch l.src[i] {
		case '\\':
			i++
		case '\n':
			return l.fail(start, errors.New("newline in double-quoted string"))
		case '"':
			s, err := strconv.Unquote(l.src[start : i+1])
			if err != nil {
				return l.fail(start, fmt.Errorf("invalid double-quoted string %s: %w", l.src[start:i+1], err))
			}
			l.pos = i + 1
			return token{kind: tokString, pos: start, text: s}
		}
	}
	return l.fail(start, errors.New("unterminated double-quoted string"))
}

func isIdentStart(c byte) bool {
	return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

func isIdentPart(c byte) bool {
	return isIdentStart(c) || ('0' <= c && c <= '9')
}

// quoteArg renders a value as a literal that lexes back to the same value:
// backticks when possible, a Go interpreted string otherwise.
func quoteArg(s string) string {
	for i := range len(s) {
		if s[i] == '`' {
			return strconv.Quote(s)
		}
	}
	return "`" + s + "`"
}
