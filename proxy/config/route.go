package config

import (
	"math"
	"strconv"
	"strings"
	"time"
)

const routeForm = "'RULE -> SERVICE[; key=value ...]'"

// Route option keys, in the order error messages list them.
const (
	optPriority       = "priority"
	optEntrypoints    = "entrypoints"
	optStrategy       = "strategy"
	optStrict         = "strict"
	optName           = "name"
	optCookie         = "cookie"
	optCookieSecure   = "cookie-secure"
	optCookieHTTPOnly = "cookie-httponly"
	optCookieSameSite = "cookie-samesite"
	optCookieMaxAge   = "cookie-max-age"
	optCookiePath     = "cookie-path"
	optCookieDomain   = "cookie-domain"
)

// knownOptions lists the option keys for error messages.
const knownOptions = optPriority + ", " + optEntrypoints + ", " + optStrategy + ", " +
	optStrict + ", " + optName + ", " + optCookie + ", " + optCookieSecure + ", " +
	optCookieHTTPOnly + ", " + optCookieSameSite + ", " + optCookieMaxAge + ", " +
	optCookiePath + ", " + optCookieDomain

func isOption(key string) bool {
	for k := range strings.SplitSeq(knownOptions, ", ") {
		if k == key {
			return true
		}
	}
	return false
}

// ParseRoute parses a --route value, 'RULE -> SERVICE[; key=value ...]'.
//
// The rule ends at the first "->" outside backticks and double quotes (a
// Traefik rule has no unquoted "->" of its own), so
// Header(`X-Dir`, `a->b`) -> chat is the rule Header(`X-Dir`, `a->b`).
// The rule is only checked to be non-empty and free of control characters;
// the rules package parses it. The route's Name is empty unless name= is
// given: FromFlags names the others "route-N". Origin is "--route".
func ParseRoute(s string) (Route, error) {
	rule, rest, err := splitRule(s)
	if err != nil {
		return Route{}, err
	}
	segs := strings.Split(rest, ";")
	svc := strings.TrimSpace(segs[0])
	if svc == "" {
		return Route{}, errorf("%s: expected a service name after '->' in %s", quote(s), routeForm)
	}
	if !validServiceName(svc) {
		return Route{}, errorf("service name %s: expected %s", quote(svc), serviceNameRule)
	}
	r := Route{Rule: rule, Service: svc, Origin: "--route"}
	if err := applyRouteOptions(&r, segs[1:]); err != nil {
		return Route{}, err
	}
	return r, nil
}

// splitRule splits s at the first "->" outside quotes and checks the rule.
func splitRule(s string) (rule, rest string, err error) {
	var open byte // the quote we are in, or 0
	at := -1      // where it opened
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case open == '`':
			if c == '`' {
				open = 0
			}
		case open == '"':
			if c == '\\' {
				i++
			} else if c == '"' {
				open = 0
			}
		case c == '`' || c == '"':
			open, at = c, i
		case c == '-' && i+1 < len(s) && s[i+1] == '>':
			rule, rest = strings.TrimSpace(s[:i]), s[i+2:]
			if rule == "" {
				return "", "", errorf("%s: expected a rule before '->' in %s", quote(s), routeForm)
			}
			if c := controlChar(rule); c >= 0 {
				return "", "", errorf("rule %s: contains the control character 0x%02x", quote(rule), c)
			}
			return rule, rest, nil
		}
	}
	if open != 0 {
		what := "backtick"
		if open == '"' {
			what = "double quote"
		}
		return "", "", errorf("%s: unterminated %s at byte %d (expected %s)", quote(s), what, at, routeForm)
	}
	return "", "", errorf("%s: expected %s", quote(s), routeForm)
}

func applyRouteOptions(r *Route, segs []string) error {
	seen := make(map[string]bool, len(segs))
	cookie := DefaultCookie("")
	firstCookieOpt := ""
	for _, seg := range segs {
		seg = strings.TrimSpace(seg)
		if seg == "" {
			continue // "a -> b;" and "a -> b; ; c=d" are harmless
		}
		rawKey, val, hasVal := strings.Cut(seg, "=")
		rawKey, val = strings.TrimSpace(rawKey), strings.TrimSpace(val)
		key := strings.ToLower(rawKey)
		if !isOption(key) {
			return errorf("unknown option %s (known: %s)", quote(rawKey), knownOptions)
		}
		if seen[key] {
			return errorf("option %s is given twice", quote(key))
		}
		seen[key] = true
		if strings.HasPrefix(key, "cookie-") && firstCookieOpt == "" {
			firstCookieOpt = key
		}
		needValue := func(form string) error {
			if val == "" {
				return errorf("option %s needs a value (%s=%s)", quote(key), key, form)
			}
			return nil
		}
		var err error
		switch key {
		case optPriority:
			if err = needValue("N"); err == nil {
				r.Priority, err = parsePriority(val)
			}
		case optEntrypoints:
			if err = needValue("a,b"); err == nil {
				r.Entrypoints, err = parseEntrypointList(val)
			}
		case optStrategy:
			if err = needValue("leastconn|roundrobin|p2c"); err == nil {
				r.Strategy, err = parseStrategy(val)
			}
		case optStrict:
			r.Strict, err = parseFlagBool(key, val, hasVal)
		case optName:
			if err = needValue("NAME"); err == nil {
				if !validRouteName(val) {
					err = errorf("route name %s: expected %s", quote(val), routeNameRule)
				}
				r.Name = val
			}
		case optCookie:
			if err = needValue("NAME"); err == nil {
				err = checkCookieName(val)
				cookie.Name = val
			}
		case optCookieSecure:
			cookie.Secure, err = parseFlagBool(key, val, hasVal)
		case optCookieHTTPOnly:
			cookie.HTTPOnly, err = parseFlagBool(key, val, hasVal)
		case optCookieSameSite:
			if err = needValue("lax|strict|none"); err == nil {
				cookie.SameSite, err = parseSameSite(key, val)
			}
		case optCookieMaxAge:
			if err = needValue("DURATION"); err == nil {
				cookie.MaxAge, err = parseMaxAge(key, val)
			}
		case optCookiePath:
			if err = needValue("/PATH"); err == nil {
				err = checkCookiePath(key, val)
				cookie.Path = val
			}
		case optCookieDomain:
			if err = needValue("DOMAIN"); err == nil {
				err = checkCookieDomain(key, val)
				cookie.Domain = val
			}
		}
		if err != nil {
			return err
		}
	}
	switch {
	case cookie.Name != "":
		r.Sticky = &cookie
	case firstCookieOpt != "":
		return errorf("%s needs cookie=NAME", firstCookieOpt)
	}
	return nil
}

func parsePriority(s string) (int, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil && !isRangeErr(err) {
		return 0, errorf("priority %s: expected an integer", quote(s))
	}
	if err != nil || n < 1 || n > math.MaxInt32 {
		return 0, errorf("priority %s: expected an integer from 1 to %d", quote(s), math.MaxInt32)
	}
	return int(n), nil
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

func parseEntrypointList(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for raw := range strings.SplitSeq(s, ",") {
		name := strings.TrimSpace(raw)
		if !validEntrypointName(name) {
			return nil, errorf("entrypoint name %s in %s: expected %s", quote(name), quote(s), entrypointNameRule)
		}
		if seen[name] {
			return nil, errorf("entrypoints %s: %s is listed twice", quote(s), quote(name))
		}
		seen[name] = true
		out = append(out, name)
	}
	return out, nil
}

func parseStrategy(s string) (string, error) {
	switch v := strings.ToLower(s); v {
	case StrategyLeastConn, StrategyRoundRobin, StrategyP2C:
		return v, nil
	}
	return "", errorf("strategy %s: expected leastconn, roundrobin or p2c", quote(s))
}

// parseFlagBool parses a bare option (true) or key=true|false.
func parseFlagBool(key, val string, hasVal bool) (bool, error) {
	if !hasVal {
		return true, nil
	}
	switch strings.ToLower(val) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errorf("%s %s: expected true or false", key, quote(val))
}

func parseSameSite(key, s string) (string, error) {
	switch v := strings.ToLower(s); v {
	case "", SameSiteLax, SameSiteStrict, SameSiteNone:
		return v, nil
	}
	return "", errorf("%s %s: expected lax, strict or none", key, quote(s))
}

// parseMaxAge parses a Go duration ("1h30m") or plain seconds ("3600").
// Cookies count in whole seconds, and a negative Max-Age deletes the cookie,
// so both are errors rather than surprises.
func parseMaxAge(key, s string) (time.Duration, error) {
	var d time.Duration
	if strings.Trim(s, "0123456789") == "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n > math.MaxInt64/int64(time.Second) {
			return 0, errorf("%s %s: expected at most %d seconds", key, quote(s), math.MaxInt64/int64(time.Second))
		}
		d = time.Duration(n) * time.Second
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, errorf("%s %s: expected a duration such as 1h or a number of seconds", key, quote(s))
		}
	}
	return checkMaxAge(key, s, d)
}

func checkMaxAge(key, s string, d time.Duration) (time.Duration, error) {
	if d < 0 || d%time.Second != 0 {
		return 0, errorf("%s %s: expected a whole number of seconds, 0 or more", key, quote(s))
	}
	return d, nil
}

func checkCookieName(s string) error {
	if !validCookieName(s) {
		return errorf("cookie name %s: expected %s", quote(s), cookieNameRule)
	}
	return nil
}

func checkCookiePath(key, s string) error {
	if !validCookiePath(s) {
		return errorf("%s %s: expected an absolute path without spaces, control characters or ';'", key, quote(s))
	}
	return nil
}

func checkCookieDomain(key, s string) error {
	if !validCookieDomain(s) {
		return errorf("%s %s: expected a host name such as example.com", key, quote(s))
	}
	return nil
}

// validateRoute checks the fields of a route, however it was built.
// Cross-references are checked by Validate.
func validateRoute(r Route) error {
	if r.Name == "" {
		return errorf("route with rule %s from %s has no name", quote(r.Rule), r.Origin)
	}
	if !validRouteName(r.Name) {
		return errorf("route name %s: expected %s", quote(r.Name), routeNameRule)
	}
	if strings.TrimSpace(r.Rule) == "" {
		return errorf("route %s has an empty rule", quote(r.Name))
	}
	if c := controlChar(r.Rule); c >= 0 {
		return errorf("route %s: rule %s contains the control character 0x%02x", quote(r.Name), quote(r.Rule), c)
	}
	if r.Priority < 0 || r.Priority > math.MaxInt32 {
		return errorf("route %s: priority %d: expected 0 (default) or an integer from 1 to %d", quote(r.Name), r.Priority, math.MaxInt32)
	}
	if r.Service == "" {
		return errorf("route %s has no service", quote(r.Name))
	}
	if r.Strategy != "" {
		if _, err := parseStrategy(r.Strategy); err != nil || r.Strategy != strings.ToLower(r.Strategy) {
			return errorf("route %s: strategy %s: expected leastconn, roundrobin or p2c", quote(r.Name), quote(r.Strategy))
		}
	}
	if c := r.Sticky; c != nil {
		if err := validateCookie(*c); err != nil {
			return errorf("route %s: %w", quote(r.Name), err)
		}
	}
	return nil
}

func validateCookie(c Cookie) error {
	if err := checkCookieName(c.Name); err != nil {
		return err
	}
	if v, err := parseSameSite("sameSite", c.SameSite); err != nil || v != c.SameSite {
		return errorf("cookie sameSite %s: expected lax, strict or none", quote(c.SameSite))
	}
	if _, err := checkMaxAge("cookie maxAge", c.MaxAge.String(), c.MaxAge); err != nil {
		return err
	}
	if c.Path != "" {
		if err := checkCookiePath("cookie path", c.Path); err != nil {
			return err
		}
	}
	if c.Domain != "" {
		return checkCookieDomain("cookie domain", c.Domain)
	}
	return nil
}
