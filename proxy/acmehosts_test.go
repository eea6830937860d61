package proxy

import (
	"slices"
	"strings"
	"testing"

	"github.com/latch-proxy/latch/proxy/rules"
)

func canonHosts(t testing.TB, rule string) []string {
	t.Helper()
	r, err := rules.Parse(rule)
	if err != nil {
		t.Fatalf("parse %q: %v", rule, err)
	}
	return ruleHosts(r.String())
}

func TestRuleHosts(t *testing.T) {
	for _, tc := range []struct {
		name, rule string
		want       []string
	}{
		{"a Host matcher gives its hosts", "Host(`chat.test`, `b.test`)", []string{"chat.test", "b.test"}},
		{"other matchers add nothing", "Host(`chat.test`) && PathPrefix(`/socket.io`, `/meta`) && Method(`GET`)", []string{"chat.test"}},
		{"names are lowercased and lose a trailing dot", "host(`Chat.TEST.`)", []string{"chat.test"}},
		{"HostHeader counts as Host", "HostHeader(`a.test`) || Host(`a.test`)", []string{"a.test"}},
		{"a negated host is left out", "!Host(`no.test`) && Host(`yes.test`)", []string{"yes.test"}},
		{"a negated group is left out", "!(Host(`no.test`) || Path(`/x`)) && Host(`yes.test`)", []string{"yes.test"}},
		{"a double negation counts", "!(!Host(`yes.test`) && Path(`/x`))", []string{"yes.test"}},
		{"a group after a negated one counts", "(!Host(`no.test`) || Path(`/a`)) && (Host(`yes.test`) || Path(`/b`))", []string{"yes.test"}},
		{"HostRegexp gives no name", "HostRegexp(`^.+\\.test$`)", nil},
		{"a backtick inside a value does not confuse the reader", "Path(\"/Host(`x.test`)\") && Host(`yes.test`)", []string{"yes.test"}},
		{"a rule without Host gives nothing", "PathPrefix(`/`)", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := canonHosts(t, tc.rule); !slices.Equal(got, tc.want) {
				t.Fatalf("ruleHosts(%q) = %q; want %q", tc.rule, got, tc.want)
			}
		})
	}
}

func TestRuleHostsStopsAtTextThatIsNotCanonical(t *testing.T) {
	for _, s := range []string{"Host(`a.test`", "Host(a.test)", ")Host(`a.test`)", "Host(`a.test`,`b.test`)"} {
		if got := ruleHosts(s); len(got) > 0 {
			t.Errorf("ruleHosts(%q) = %q; want nothing", s, got)
		}
	}
}

// FuzzRuleHosts checks, for any rule that parses, that the hosts are
// well-formed, that a negated rule yields none of its own hosts, and that
// a Host matcher joined with && or || is always found.
func FuzzRuleHosts(f *testing.F) {
	for _, s := range []string{
		"Host(`chat.test`) && PathPrefix(`/socket.io`)",
		"!(Host(`a.test`) || Path(`/x`))",
		"Path(\"/`\") || HostHeader(`B.test.`)",
		"(Method(`GET`) || !Header(`X`, `y`)) && Host(`a.test`, `b.test`)",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rule string) {
		r, err := rules.Parse(rule)
		if err != nil {
			return
		}
		hosts := ruleHosts(r.String())
		for i, h := range hosts {
			if h == "" || h != strings.ToLower(h) || strings.HasSuffix(h, ".") || slices.Contains(hosts[:i], h) {
				t.Fatalf("ruleHosts(%q) = %q: %q is empty, not lowercase, ends with a dot or repeats", r, hosts, h)
			}
		}
		// The wrapped rules may exceed the parser's nesting limit: skip those.
		if neg, err := rules.Parse("!(" + r.String() + ")"); err == nil && !strings.Contains(r.String(), "!") {
			if got := ruleHosts(neg.String()); len(got) > 0 {
				t.Fatalf("the negation of %q gives hosts %q", r, got)
			}
		}
		for _, joined := range []string{"Host(`x.example`) && (" + r.String() + ")", "(" + r.String() + ") || Host(`x.example`)"} {
			j, err := rules.Parse(joined)
			if err != nil {
				continue
			}
			if got := ruleHosts(j.String()); !slices.Contains(got, "x.example") {
				t.Fatalf("ruleHosts(%q) = %q; want x.example among them", j, got)
			}
		}
	})
}
