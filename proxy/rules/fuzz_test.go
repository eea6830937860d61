package rules

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"Host(`a.com`)",
		"Host(`a.com`, `b.com`) && PathPrefix(`/socket.io`, `/meta`)",
		"Host(`a`) && (PathPrefix(`/x`) || !Method(`POST`))",
		"HostRegexp(`{sub:[a-z]+}.example.com`) || Path(`/u/{id:[0-9]+}`)",
		"Headers(`A`, `1`) && HeaderRegexp(`B`, `^x`) && Query(`a=1`, `b=`) && QueryRegexp(`c`, `d`)",
		"ClientIP(`10.0.0.0/8`, `::1`)",
		`Header("X", "a\"b` + "`" + `c")`,
		"((((Host(`a`)",
		"Host(`a`))))",
		"Host(`unterminated",
		`Host("unterminated`,
		"Host(`a`)\x00&& Path(`/`)",
		"Host(`\x00`)",
		"Hôst(`ünïcödé`) && Path(`/日本`)",
		"Path(`/{`) || Path(`/{a:(}`)",
		"!!!!!!!!!!Host(`a`)",
		strings.Repeat("(", 200) + "Host(`a`)" + strings.Repeat(")", 200),
		strings.Repeat("!(", 60) + "Host(`a`)" + strings.Repeat(")", 60),
		"Host(`a`) &&",
		"&& Host(`a`)",
		"Host(`a`,,)",
		"",
		"\xff\xfe",
	} {
		f.Add(seed)
	}
	probes := []*fakeRequest{
		req("a.com", "/"),
		req("A.COM:80", "/socket.io/x", method("POST"), header("A", "1"), query("a", "1"), clientIP("10.1.1.1")),
		req("api.example.com", "/u/42", header("B", "xyz"), query("b", ""), query("c", "d")),
		req("", ""),
	}
	f.Fuzz(func(t *testing.T, rule string) {
		r, err := Parse(rule)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *ParseError", err)
			}
			if pe.Rule != rule || pe.Offset < 0 || pe.Offset > len(rule) {
				t.Fatalf("error %v points outside the rule", err)
			}
			return
		}
		canon := r.String()
		again, err := Parse(canon)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", canon, rule, err)
		}
		if again.String() != canon {
			t.Fatalf("canonical form is not stable: %q became %q", canon, again.String())
		}
		for _, q := range probes {
			if r.Match(q) != again.Match(q) {
				t.Fatalf("%q and its canonical form %q disagree on %s%s", rule, canon, q.host, q.path)
			}
		}
	})
}

func FuzzIndexAgreesWithLinearScan(f *testing.F) {
	f.Add(uint64(1), uint8(10), uint8(50))
	f.Add(uint64(42), uint8(200), uint8(20))
	f.Add(uint64(7), uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, seed uint64, rules, requests uint8) {
		r := rand.New(rand.NewPCG(seed, 2))
		checkAgreement(t, r, randomEntries(t, r, int(rules)), int(requests))
	})
}
