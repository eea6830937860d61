package proxy

import (
	"slices"
	"strconv"
	"strings"
)

// ruleHosts returns the host names that the Host and HostHeader matchers of
// a rule accept, lowercase and without a trailing dot, leaving out those
// under a negation (!Host(`a`) names a host the route refuses). canon must
// be a rule's canonical form (rules.Rule.String): canonical matcher names,
// arguments as Go string literals, parentheses only where needed. On text
// that is not canonical it returns what it read so far, never more: a
// missing host only means no ACME certificate for it.
func ruleHosts(canon string) []string {
	var (
		hosts   []string
		outer   []bool // the negation of each enclosing group
		negated bool   // the negation of the current group
		bang    bool   // a "!" applies to the next operand
	)
	for i := 0; i < len(canon); {
		switch c := canon[i]; {
		case c == '!':
			bang = !bang
			i++
		case c == '(':
			outer = append(outer, negated)
			negated, bang = negated != bang, false
			i++
		case c == ')':
			if len(outer) == 0 {
				return hosts
			}
			negated, outer = outer[len(outer)-1], outer[:len(outer)-1]
			i++
		case isRuleIdentStart(c):
			j := i + 1
			for j < len(canon) && (isRuleIdentStart(canon[j]) || '0' <= canon[j] && canon[j] <= '9') {
				j++
			}
			args, end, ok := matcherArgs(canon, j)
			if !ok {
				return hosts
			}
			if name := canon[i:j]; (name == "Host" || name == "HostHeader") && negated == bang {
				for _, a := range args {
					if h := strings.TrimSuffix(strings.ToLower(a), "."); h != "" && !slices.Contains(hosts, h) {
						hosts = append(hosts, h)
					}
				}
			}
			bang = false
			i = end
		default: // spaces and the && and || operators
			i++
		}
	}
	return hosts
}

// matcherArgs reads "(lit, lit, ...)" starting at s[i] and returns the
// unquoted arguments and the offset just after the ")".
func matcherArgs(s string, i int) (args []string, end int, ok bool) {
	if i >= len(s) || s[i] != '(' {
		return nil, 0, false
	}
	i++
	for {
		lit, err := strconv.QuotedPrefix(s[i:])
		if err != nil {
			return nil, 0, false
		}
		v, err := strconv.Unquote(lit)
		if err != nil {
			return nil, 0, false
		}
		args = append(args, v)
		i += len(lit)
		switch {
		case strings.HasPrefix(s[i:], ", "):
			i += 2
		case strings.HasPrefix(s[i:], ")"):
			return args, i + 1, true
		default:
			return nil, 0, false
		}
	}
}

func isRuleIdentStart(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
