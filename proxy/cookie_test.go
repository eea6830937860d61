package proxy

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestScanCookieFindsACookieAsFasthttpDoes(t *testing.T) {
	for _, tc := range []struct {
		name, header, want string
		found              bool
	}{
		{"the only cookie", "lb=tok", "tok", true},
		{"a cookie among others", "a=1; lb=tok; b=2", "tok", true},
		{"spaces and tabs around name and value", "a=1;  \tlb \t= tok\t ;b=2", "tok", true},
		{"a quoted value loses its quotes", `lb="tok"`, "tok", true},
		{"a value with an equals sign keeps it", "lb=a=b", "a=b", true},
		{"the first of two wins", "lb=one; lb=two", "one", true},
		{"an invalid value is skipped for the next", `lb=a\b; lb=good`, "good", true},
		{"a name that only ends with it is another cookie", "xlb=tok", "", false},
		{"a pair without an equals sign is no cookie of that name", "lb; a=1", "", false},
		{"an empty value is a value", "lb=", "", true},
		{"no header", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, found := scanCookie([]byte(tc.header), "lb")
			if string(got) != tc.want || found != tc.found {
				t.Fatalf("scanCookie(%q) = %q, %v; want %q, %v", tc.header, got, found, tc.want, tc.found)
			}
		})
	}
}

func TestRequestCookieReadsTheParsedRequest(t *testing.T) {
	for _, tc := range []struct {
		name, cookies string // the request's Cookie header lines
		keep          string // a line the forwarded header must still hold
	}{
		{"the cookie is read and the header left as it came",
			"Cookie: a=1;lb=tok;  b=\"2\"\r\n", "Cookie: a=1;lb=tok;  b=\"2\"\r\n"},
		{"a cookie in a second Cookie header is found too",
			"Cookie: a=1\r\nCookie: lb=tok\r\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h fasthttp.RequestHeader
			raw := "GET / HTTP/1.1\r\nHost: x\r\n" + tc.cookies + "\r\n"
			if err := h.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
				t.Fatal(err)
			}
			if v := requestCookie(&h, "lb"); string(v) != "tok" {
				t.Fatalf("lb = %q", v)
			}
			if !strings.Contains(h.String(), tc.keep) {
				t.Fatalf("the Cookie header was rewritten:\n%s", h.String())
			}
		})
	}
}

// FuzzScanCookie holds scanCookie to fasthttp's own parse of one Cookie
// header: the same value for the same name, whatever the header holds.
func FuzzScanCookie(f *testing.F) {
	for _, s := range []string{"lb=tok", "a=1; lb=\"x\"", "lb=a\\b; lb=c", " lb =\t v ;", "lb", ";;lb=;", "lb=\"\"\""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		if strings.ContainsAny(header, "\r\n") {
			return
		}
		var h fasthttp.RequestHeader
		h.SetBytesKV(hdrCookie, []byte(header))
		want := h.Cookie("lb")
		got, _ := scanCookie([]byte(header), "lb")
		if string(got) != string(want) {
			t.Fatalf("header %q: scanCookie %q, fasthttp %q", header, got, want)
		}
	})
}
