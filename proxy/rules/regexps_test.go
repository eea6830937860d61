package rules

import "testing"

func TestPatternLiterals(t *testing.T) {
	tests := []struct {
		name, src, prefix, suffix string
	}{
		{"an anchored literal is both prefix and suffix", `^ab$`, "ab", "ab"},
		{"an anchored host regexp has both", `^tenant-[a-z]+\.example\.net$`, "tenant-", ".example.net"},
		{"an unanchored regexp has neither", `api\.example`, "", ""},
		{"a repetition ends the prefix before its operand", `^abc+`, "ab", ""},
		{"case folding ends the prefix", `^(?i)abc`, "", ""},
		{"an alternation has neither", `^a|b$`, "", ""},
		{"multi-line anchors do not count", `(?m)^ab$`, "", ""},
		{"U+FFFD ends the literals since it matches invalid bytes", "^a\uFFFDb", "", ""},
		{"a capture group ends the prefix", `^/api/(v1|v2)/`, "/api/", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := compilePattern(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			if p.prefix != tt.prefix || p.suffix != tt.suffix {
				t.Errorf("literals of %s = %q, %q; want %q, %q", tt.src, p.prefix, p.suffix, tt.prefix, tt.suffix)
			}
		})
	}
}

func TestPatternAgreesWithItsRegexp(t *testing.T) {
	srcs := []string{`^ab$`, `^ab`, `ab$`, `^a.*b$`, `^a\x{FFFD}`, `^tenant-[a-z]+\.x$`, `^$`}
	inputs := []string{"", "a", "ab", "abab", "a\xffb", "a\xff", "tenant-x.x", "tenant-.x", "xab"}
	for _, src := range srcs {
		p, err := compilePattern(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range inputs {
			if got, want := p.match([]byte(in)), p.re.MatchString(in); got != want {
				t.Errorf("%s on %q = %v, regexp says %v", src, in, got, want)
			}
		}
	}
}

func TestAnchoredPathRegexpNarrowsTheIndex(t *testing.T) {
	r := mustParse(t, "PathRegexp(`^/api/v[0-9]+/`) && Host(`a.com`)")
	if r.need.prefix != "/api/v" || len(r.need.hosts) == 0 {
		t.Errorf("constraint = %+v, want prefix /api/v under a.com", r.need)
	}
}
