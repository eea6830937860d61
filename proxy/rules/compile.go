package rules

import (
	"errors"
	"fmt"
	"net/netip"
	"net/textproto"
	"strings"
	"unicode/utf8"
)

// arg is one matcher argument: its decoded value and where its literal
// starts in the rule.
type arg struct {
	val string
	pos int
}

// canonicalName returns the canonical spelling of a matcher name, or "" for
// an unknown one. Like Traefik it accepts the canonical, lower-case,
// upper-case and title-case spellings.
func canonicalName(name string) string {
	for _, c := range [...]string{
		"Host", "HostHeader", "HostRegexp", "Path", "PathPrefix", "PathRegexp",
		"Method", "Header", "Headers", "HeaderRegexp", "HeadersRegexp",
		"Query", "QueryRegexp", "ClientIP",
	} {
		lower := strings.ToLower(c)
		if name == c || name == lower || name == strings.ToUpper(c) || name == strings.ToUpper(c[:1])+lower[1:] {
			return c
		}
	}
	return ""
}

// compile checks the arguments of the matcher named name (canonical) and
// compiles it. On error it also returns the offset to blame: the argument's,
// or the matcher name's for a wrong argument count.
func compile(name string, namePos int, args []arg) (matcher, int, error) {
	for i, a := range args {
		if a.val == "" {
			return nil, a.pos, fmt.Errorf("argument %d is empty", i+1)
		}
	}
	arity := func(ok bool, want string) error {
		if ok {
			return nil
		}
		return fmt.Errorf("expected %s, got %d", want, len(args))
	}
	var err error
	switch name {
	case "PathRegexp":
		err = arity(len(args) == 1, "1 argument")
	case "Header", "HeaderRegexp":
		err = arity(len(args) == 2, "2 arguments")
	case "Headers", "HeadersRegexp":
		err = arity(len(args) >= 2 && len(args)%2 == 0, "key and value pairs")
	case "QueryRegexp":
		err = arity(len(args) == 1 || len(args) == 2, "1 or 2 arguments")
	default:
		err = arity(len(args) >= 1, "at least 1 argument")
	}
	if err != nil {
		return nil, namePos, err
	}
	var m matcher
	pos := namePos
	switch name {
	case "Host", "HostHeader":
		m, pos, err = compileHost(args)
	case "HostRegexp":
		m, pos, err = compileHostRegexp(args)
	case "Path", "PathPrefix":
		m, pos, err = compilePath(args, name == "PathPrefix")
	case "PathRegexp":
		var p pattern
		p, err = compilePattern(args[0].val)
		m, pos = &pathMatcher{ps: []pattern{p}}, args[0].pos
	case "Method":
		ms := make([]string, len(args))
		for i, a := range args {
			ms[i] = strings.ToUpper(a.val)
		}
		m = &methodMatcher{methods: ms}
	case "Header", "Headers", "HeaderRegexp", "HeadersRegexp":
		m, pos, err = compileHeaders(args, strings.HasSuffix(name, "Regexp"))
	case "Query":
		m, pos, err = compileQuery(args)
	case "QueryRegexp":
		m, pos, err = compileQueryRegexp(args)
	case "ClientIP":
		m, pos, err = compileClientIP(args)
	default:
		err = fmt.Errorf("unknown matcher %q", name)
	}
	if err != nil {
		return nil, pos, err
	}
	return m, pos, nil
}

func checkASCII(host string) error {
	for i := range len(host) {
		if host[i] >= utf8.RuneSelf {
			return fmt.Errorf("%q has non-ASCII characters", host)
		}
	}
	return nil
}

func compileHost(args []arg) (matcher, int, error) {
	hosts := make([]string, len(args))
	for i, a := range args {
		if err := checkASCII(a.val); err != nil {
			return nil, a.pos, err
		}
		hosts[i] = strings.ToLower(a.val)
	}
	return &hostMatcher{hosts: hosts}, 0, nil
}

// compileHostRegexp reads a single argument without templates as a v3
// regular expression, and anything else as v2 templates.
func compileHostRegexp(args []arg) (matcher, int, error) {
	v2 := len(args) > 1
	for _, a := range args {
		v2 = v2 || isTemplate(a.val)
	}
	ps := make([]pattern, len(args))
	for i, a := range args {
		if err := checkASCII(a.val); err != nil {
			return nil, a.pos, err
		}
		if !v2 {
			p, err := compilePattern(a.val)
			if err != nil {
				return nil, a.pos, err
			}
			ps[i] = p
			continue
		}
		p, err := compileTemplate(a.val, hostVarPattern, true)
		if err != nil {
			return nil, a.pos, fmt.Errorf("invalid template %q: %w", a.val, err)
		}
		ps[i] = p
	}
	return newHostRegexpMatcher(ps), 0, nil
}

func compilePath(args []arg, prefix bool) (matcher, int, error) {
	m := &pathMatcher{}
	for _, a := range args {
		if !strings.HasPrefix(a.val, "/") {
			return nil, a.pos, fmt.Errorf("path %q does not start with a '/'", a.val)
		}
		switch {
		case isTemplate(a.val):
			p, err := compileTemplate(a.val, pathVarPattern, !prefix)
			if err != nil {
				return nil, a.pos, fmt.Errorf("invalid template %q: %w", a.val, err)
			}
			m.ps = append(m.ps, p)
		case prefix:
			m.prefixes = append(m.prefixes, a.val)
		default:
			m.exact = append(m.exact, a.val)
		}
	}
	return m, 0, nil
}

// compileHeaders builds Header(`k`, `v`) (v3) and Headers(`k`, `v`, ...)
// (v2, pairs that must all match), with exact values or regexps.
func compileHeaders(args []arg, regexps bool) (matcher, int, error) {
	m := &headerMatcher{}
	for i := 0; i+1 < len(args); i += 2 {
		t := valueTest{key: []byte(textproto.CanonicalMIMEHeaderKey(args[i].val)), exact: args[i+1].val}
		if regexps {
			p, err := compilePattern(args[i+1].val)
			if err != nil {
				return nil, args[i+1].pos, err
			}
			t.re = &p
		}
		m.tests = append(m.tests, t)
	}
	return m, 0, nil
}

// compileQuery reads Query(`k`) and Query(`k`, `v`) as v3 (the first
// argument has no "="), and anything else as v2: arguments are split at
// their first "=" and the parts paired as keys and values, as Traefik v2
// did. A v2 value may be empty (any value) or a template.
func compileQuery(args []arg) (matcher, int, error) {
	if len(args) <= 2 && !strings.Contains(args[0].val, "=") {
		t := valueTest{key: []byte(args[0].val)}
		if len(args) == 2 {
			t.exact = args[1].val
		}
		return &queryMatcher{tests: []valueTest{t}}, 0, nil
	}
	var parts []arg
	for _, a := range args {
		k, v, found := strings.Cut(a.val, "=")
		parts = append(parts, arg{val: k, pos: a.pos})
		if found {
			parts = append(parts, arg{val: v, pos: a.pos})
		}
	}
	if len(parts)%2 != 0 {
		return nil, args[len(args)-1].pos, errors.New("expected key=value pairs, found a key without a value")
	}
	m := &queryMatcher{}
	for i := 0; i < len(parts); i += 2 {
		k, v := parts[i], parts[i+1]
		if k.val == "" {
			return nil, k.pos, errors.New("empty query parameter name")
		}
		t := valueTest{key: []byte(k.val), exact: v.val, any: v.val == ""}
		if isTemplate(v.val) {
			p, err := compileTemplate(v.val, queryVarPattern, true)
			if err != nil {
				return nil, v.pos, fmt.Errorf("invalid template %q: %w", v.val, err)
			}
			t.re = &p
		}
		m.tests = append(m.tests, t)
	}
	return m, 0, nil
}

func compileQueryRegexp(args []arg) (matcher, int, error) {
	t := valueTest{key: []byte(args[0].val)}
	if len(args) == 2 {
		p, err := compilePattern(args[1].val)
		if err != nil {
			return nil, args[1].pos, err
		}
		t.re = &p
	}
	return &queryMatcher{tests: []valueTest{t}}, 0, nil
}

func compileClientIP(args []arg) (matcher, int, error) {
	m := &clientIPMatcher{}
	for _, a := range args {
		var p netip.Prefix
		var err error
		if strings.Contains(a.val, "/") {
			p, err = netip.ParsePrefix(a.val)
			p = p.Masked()
		} else {
			var ip netip.Addr
			ip, err = netip.ParseAddr(a.val)
			if err == nil && ip.Zone() != "" {
				err = errors.New("zones are not allowed")
			}
			ip = ip.Unmap()
			p = netip.PrefixFrom(ip, ip.BitLen())
		}
		if err != nil {
			return nil, a.pos, fmt.Errorf("%q is neither an IP address nor a CIDR: %w", a.val, err)
		}
		m.prefixes = append(m.prefixes, p)
	}
	return m, 0, nil
}
