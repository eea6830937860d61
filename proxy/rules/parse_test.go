package rules

import (
	"errors"
	"regexp"
	"regexp/syntax"
	"strings"
	"testing"
)

func TestParseAcceptsBothDialects(t *testing.T) {
	tests := []struct {
		name, rule, want string
	}{
		{"a v3 host is kept as written", "Host(`example.com`)", "Host(`example.com`)"},
		{"v2 hosts are a list of alternatives", "Host(`a.com`, `b.com`)", "Host(`a.com`, `b.com`)"},
		{"v2 path prefixes are a list of alternatives", "PathPrefix(`/socket.io`, `/meta`)", "PathPrefix(`/socket.io`, `/meta`)"},
		{"double quotes become backticks", `Host("a.com") && Path("/x")`, "Host(`a.com`) && Path(`/x`)"},
		{"escapes in double quotes are decoded", `Header("X-A", "a\tb")`, "Header(`X-A`, `a\tb`)"},
		{"a value holding a backtick stays double-quoted", "Header(`X-A`, \"a`b\")", "Header(`X-A`, \"a`b\")"},
		{"parentheses precedence needs are kept", "Host(`a`) && (PathPrefix(`/x`) || !Method(`POST`))", "Host(`a`) && (PathPrefix(`/x`) || !Method(`POST`))"},
		{"redundant parentheses are dropped", "((Host(`a`)) && (Path(`/x`)))", "Host(`a`) && Path(`/x`)"},
		{"nested conjunctions are flattened", "(Host(`a`) && Path(`/x`)) && Method(`GET`)", "Host(`a`) && Path(`/x`) && Method(`GET`)"},
		{"and binds tighter than or", "Host(`a`) || Host(`b`) && Path(`/x`)", "Host(`a`) || Host(`b`) && Path(`/x`)"},
		{"a negated group keeps its parentheses", "!(Host(`a`) || Host(`b`))", "!(Host(`a`) || Host(`b`))"},
		{"double negation is kept", "!!Host(`a`)", "!!Host(`a`)"},
		{"white space and newlines are insignificant", "Host(`a`)\n\t&&   Path( `/x` , )", "Host(`a`) && Path(`/x`)"},
		{"lower-case matcher names are canonicalised", "host(`a`) && pathprefix(`/x`)", "Host(`a`) && PathPrefix(`/x`)"},
		{"upper-case matcher names are canonicalised", "HOST(`a`) && PATHPREFIX(`/x`)", "Host(`a`) && PathPrefix(`/x`)"},
		{"title-case matcher names are canonicalised", "Pathprefix(`/x`) && Hostregexp(`a`)", "PathPrefix(`/x`) && HostRegexp(`a`)"},
		{"v2 host templates are accepted", "HostRegexp(`{sub:[a-z]+}.example.com`)", "HostRegexp(`{sub:[a-z]+}.example.com`)"},
		{"v3 host regexps are accepted", `HostRegexp(` + "`" + `^[a-z]+\.example\.com$` + "`" + `)`, "HostRegexp(`^[a-z]+\\.example\\.com$`)"},
		{"v2 path templates are accepted", "Path(`/foo/{id:[0-9]+}`)", "Path(`/foo/{id:[0-9]+}`)"},
		{"v2 headers are accepted", "Headers(`X-A`, `1`) && HeadersRegexp(`X-B`, `^b`)", "Headers(`X-A`, `1`) && HeadersRegexp(`X-B`, `^b`)"},
		{"v3 headers are accepted", "Header(`X-A`, `1`) && HeaderRegexp(`X-B`, `^b`)", "Header(`X-A`, `1`) && HeaderRegexp(`X-B`, `^b`)"},
		{"v2 queries are accepted", "Query(`a=1`, `b=`)", "Query(`a=1`, `b=`)"},
		{"v3 queries are accepted", "Query(`a`, `1`) || Query(`b`) || QueryRegexp(`c`, `^x`)", "Query(`a`, `1`) || Query(`b`) || QueryRegexp(`c`, `^x`)"},
		{"client IPs and CIDRs are accepted", "ClientIP(`10.0.0.0/8`, `::1`)", "ClientIP(`10.0.0.0/8`, `::1`)"},
		{"the legacy HostHeader matcher is accepted", "HostHeader(`a`)", "HostHeader(`a`)"},
		{"a regexp quantifier is not a template", "PathRegexp(`^/[a-z]{2,3}$`)", "PathRegexp(`^/[a-z]{2,3}$`)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(tt.rule)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.rule, err)
			}
			if got := r.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if r.Source() != tt.rule {
				t.Errorf("Source() = %q, want %q", r.Source(), tt.rule)
			}
			again, err := Parse(r.String())
			if err != nil {
				t.Fatalf("re-parsing %q: %v", r.String(), err)
			}
			if again.String() != r.String() {
				t.Errorf("re-parsed String() = %q, want %q", again.String(), r.String())
			}
		})
	}
}

func TestParseRejectsBadRulesWithPosition(t *testing.T) {
	deep := strings.Repeat("(", maxDepth+1) + "Host(`a`)" + strings.Repeat(")", maxDepth+1)
	tests := []struct {
		name, rule string
		want       string // the whole message, or a regexp when it starts with ^
	}{
		{"an unquoted argument", "PathPrefix(/x)", `rule "PathPrefix(/x)": at 11: expected a backtick or double-quoted string`},
		{"an empty rule", "", `rule "": at 0: empty rule`},
		{"a blank rule", "  \n", `rule "  \n": at 3: empty rule`},
		{"an unknown matcher", "Host(`a`) && Foo(`b`)", "rule \"Host(`a`) && Foo(`b`)\": at 13: unknown matcher \"Foo\""},
		{"a mixed-case misspelling", "hOST(`a`)", "rule \"hOST(`a`)\": at 0: unknown matcher \"hOST\""},
		{"a matcher without arguments", "Host()", `rule "Host()": at 0: Host: expected at least 1 argument, got 0`},
		{"a v3 header with one argument", "Header(`X`)", "rule \"Header(`X`)\": at 0: Header: expected 2 arguments, got 1"},
		{"v2 headers with an odd count", "Headers(`X`, `1`, `Y`)", "rule \"Headers(`X`, `1`, `Y`)\": at 0: Headers: expected key and value pairs, got 3"},
		{"a path regexp with two arguments", "PathRegexp(`/a`, `/b`)", "rule \"PathRegexp(`/a`, `/b`)\": at 0: PathRegexp: expected 1 argument, got 2"},
		{"an empty argument", "Host(`a`, ``)", "rule \"Host(`a`, ``)\": at 10: Host: argument 2 is empty"},
		{"a bad regexp", "PathRegexp(`[`)", "^rule \"PathRegexp\\(`\\[`\\)\": at 11: PathRegexp: invalid regexp \"\\[\": error parsing regexp: missing closing \\]"},
		{"a bad template", "Path(`/{id:[0-9]+`)", "^rule .*: at 5: Path: invalid template \"/\\{id:\\[0-9\\]\\+\": unbalanced braces$"},
		{"a template variable escaping its group", "Path(`/a/{x:a)|(.*}`)", "^rule .*: at 5: Path: invalid template .*: variable x: error parsing regexp"},
		{"a relative path", "Path(`x`)", "rule \"Path(`x`)\": at 5: Path: path \"x\" does not start with a '/'"},
		{"a bad CIDR", "ClientIP(`10.0.0.0/33`)", "^rule .*: at 9: ClientIP: \"10.0.0.0/33\" is neither an IP address nor a CIDR: "},
		{"a non-ASCII host", "Host(`é.com`)", "rule \"Host(`é.com`)\": at 5: Host: \"é.com\" has non-ASCII characters"},
		{"a v2 query key without a value", "Query(`a=1`, `b`)", "^rule .*: at 13: Query: expected key=value pairs"},
		{"an unterminated backtick", "Host(`a)", "rule \"Host(`a)\": at 5: unterminated backtick string"},
		{"an unterminated double quote", `Host("a)`, `rule "Host(\"a)": at 5: unterminated double-quoted string`},
		{"single quotes", "Host('a')", "rule \"Host('a')\": at 5: single quotes are not allowed; use backticks or double quotes"},
		{"a missing close parenthesis", "(Host(`a`)", "rule \"(Host(`a`)\": at 10: expected \"&&\", \"||\" or \")\""},
		{"an extra close parenthesis", "Host(`a`))", "rule \"Host(`a`))\": at 9: unexpected \")\" after a complete expression"},
		{"trailing garbage", "Host(`a`) Path(`/`)", "rule \"Host(`a`) Path(`/`)\": at 10: unexpected matcher \"Path\" after a complete expression"},
		{"a lone ampersand", "Host(`a`) & Path(`/`)", "rule \"Host(`a`) & Path(`/`)\": at 10: expected \"&&\""},
		{"a dangling operator", "Host(`a`) &&", "rule \"Host(`a`) &&\": at 12: expected a matcher, \"!\" or \"(\""},
		{"a matcher name without arguments", "Host && Path(`/`)", "rule \"Host && Path(`/`)\": at 5: expected \"(\" after Host"},
		{"a NUL byte", "Host(`a`)\x00", "rule \"Host(`a`)\\x00\": at 9: unexpected character '\\x00' after a complete expression"},
		{"nesting deeper than the limit", deep, "^rule .*: at 100: nesting deeper than 100 levels$"},
		{"negation deeper than the limit", strings.Repeat("!", maxDepth+1) + "Host(`a`)", "^rule .*: at 100: nesting deeper than 100 levels$"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(tt.rule)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want an error", tt.rule, r)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Rule != tt.rule || pe.Offset < 0 || pe.Offset > len(tt.rule) {
				t.Fatalf("error %#v is not a *ParseError within the rule", err)
			}
			if strings.HasPrefix(tt.want, "^") {
				if !regexp.MustCompile(tt.want).MatchString(err.Error()) {
					t.Errorf("error %q does not match %s", err, tt.want)
				}
				return
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %q\nwant %q", err, tt.want)
			}
		})
	}
}

func TestParseAcceptsNestingAtTheLimit(t *testing.T) {
	rule := strings.Repeat("(", maxDepth) + "Host(`a`)" + strings.Repeat(")", maxDepth)
	if _, err := Parse(rule); err != nil {
		t.Fatalf("%d levels: %v", maxDepth, err)
	}
	rule = strings.Repeat("!", maxDepth) + "Host(`a`)"
	if _, err := Parse(rule); err != nil {
		t.Fatalf("%d negations: %v", maxDepth, err)
	}
}

func TestParseWrapsUnderlyingErrors(t *testing.T) {
	_, err := Parse("HostRegexp(`(`)")
	var se *syntax.Error
	if !errors.As(err, &se) || se.Code != syntax.ErrMissingParen {
		t.Errorf("error %v does not wrap the regexp syntax error", err)
	}
}
