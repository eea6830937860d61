package rules

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Default variable patterns of gorilla/mux, which Traefik v2 used.
const (
	hostVarPattern  = `[^.]+`
	pathVarPattern  = `[^/]+`
	queryVarPattern = `.*`
)

// isTemplate reports whether s uses gorilla/mux variables: an unescaped "{"
// followed by a name and then "}" or ":". Regexp quantifiers such as {2,3}
// do not qualify, so v3 regular expressions are not mistaken for templates.
func isTemplate(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '{' || (i > 0 && s[i-1] == '\\') {
			continue
		}
		j := i + 1
		if j >= len(s) || !isIdentStart(s[j]) {
			continue
		}
		for j < len(s) && (isIdentPart(s[j]) || s[j] == '-' || s[j] == '.') {
			j++
		}
		if j < len(s) && (s[j] == '}' || s[j] == ':') {
			return true
		}
	}
	return false
}

// compileTemplate translates a mux template ("/users/{id:[0-9]+}") into a
// regular expression anchored at the start, and at the end too when whole
// is set; the literal text before the first variable becomes the pattern's
// prefix. Literal text is quoted; a variable without a pattern gets def. Like
// mux, it rejects unbalanced braces and variables with an empty name or
// pattern.
func compileTemplate(tpl, def string, whole bool) (pattern, error) {
	var src strings.Builder
	src.WriteByte('^')
	level, start, end := 0, 0, 0
	for i := 0; i < len(tpl); i++ {
		switch tpl[i] {
		case '{':
			level++
			if level == 1 {
				start = i
			}
		case '}':
			level--
			if level < 0 {
				return pattern{}, errors.New("unbalanced braces")
			}
			if level > 0 {
				continue
			}
			src.WriteString(regexp.QuoteMeta(tpl[end:start]))
			name, patt, found := strings.Cut(tpl[start+1:i], ":")
			if !found {
				patt = def
			}
			if name == "" || patt == "" {
				return pattern{}, errors.New("missing name or pattern in " + tpl[start:i+1])
			}
			// Compiling the pattern alone proves its parentheses balance, so
			// it cannot close the group and escape the anchored prefix.
			if _, err := regexp.Compile(patt); err != nil {
				return pattern{}, fmt.Errorf("variable %s: %w", name, err)
			}
			src.WriteString("(?:" + patt + ")")
			end = i + 1
		}
	}
	if level != 0 {
		return pattern{}, errors.New("unbalanced braces")
	}
	src.WriteString(regexp.QuoteMeta(tpl[end:]))
	if whole {
		src.WriteByte('$')
	}
	return compilePattern(src.String())
}
