package rules

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

// pattern is a compiled regular expression with the literal text that every
// match of an anchored expression must start and end with. Checking those
// first rejects most inputs without entering the regexp engine, and the
// Index narrows candidates with the prefix of path patterns.
type pattern struct {
	re     *regexp.Regexp
	prefix string // the input starts with it; "" when unknown
	suffix string // the input ends with it; "" when unknown
}

func compilePattern(src string) (pattern, error) {
	re, err := regexp.Compile(src)
	if err != nil {
		return pattern{}, fmt.Errorf("invalid regexp %q: %w", src, err)
	}
	p := pattern{re: re}
	// regexp.Compile parses with syntax.Perl, under which ^ and $ only
	// match at the ends of the text.
	if tree, err := syntax.Parse(src, syntax.Perl); err == nil && tree.Op == syntax.OpConcat {
		p.prefix, p.suffix = anchoredLiterals(tree.Sub)
	}
	return p, nil
}

// anchoredLiterals returns the literal runs right after a leading \A and
// right before a trailing \z in a concatenation.
func anchoredLiterals(subs []*syntax.Regexp) (prefix, suffix string) {
	if len(subs) > 0 && subs[0].Op == syntax.OpBeginText {
		var b strings.Builder
		for _, s := range subs[1:] {
			if !exactLiteral(s) {
				break
			}
			b.WriteString(string(s.Rune))
		}
		prefix = b.String()
	}
	if n := len(subs); n > 0 && subs[n-1].Op == syntax.OpEndText {
		var runs []string
		for i := n - 2; i >= 0 && exactLiteral(subs[i]); i-- {
			runs = append(runs, string(subs[i].Rune))
		}
		for i := len(runs) - 1; i >= 0; i-- {
			suffix += runs[i]
		}
	}
	return prefix, suffix
}

// exactLiteral reports whether s matches exactly the bytes of its runes:
// not case-folded, and without U+FFFD, which also matches invalid bytes.
func exactLiteral(s *syntax.Regexp) bool {
	if s.Op != syntax.OpLiteral || s.Flags&syntax.FoldCase != 0 {
		return false
	}
	for _, r := range s.Rune {
		if r == utf8.RuneError {
			return false
		}
	}
	return true
}

func (p *pattern) match(b []byte) bool {
	if len(b) < len(p.prefix) || len(b) < len(p.suffix) ||
		string(b[:len(p.prefix)]) != p.prefix ||
		string(b[len(b)-len(p.suffix):]) != p.suffix {
		return false
	}
	return p.re.Match(b)
}

func matchAny(ps []pattern, b []byte) bool {
	for i := range ps {
		if ps[i].match(b) {
			return true
		}
	}
	return false
}
