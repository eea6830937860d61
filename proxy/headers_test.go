package proxy

import (
	"bufio"
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestHopByHopHeadersAreStripped(t *testing.T) {
	for _, tc := range []struct {
		name        string
		keepUpgrade bool
		gone, kept  []string
	}{
		{"a plain request loses every hop-by-hop header and those Connection names", false,
			[]string{"Keep-Alive", "Te", "Trailer", "Upgrade", "X-Private", "Proxy-Authorization"}, []string{"X-Kept"}},
		{"an upgrade keeps Upgrade and Connection: Upgrade", true,
			[]string{"Keep-Alive", "X-Private"}, []string{"Upgrade", "X-Kept", "Connection"}},
	} {
		for _, parsed := range []bool{false, true} {
			name := tc.name + ", header built in code"
			if parsed {
				name = tc.name + ", header read off the wire"
			}
			t.Run(name, func(t *testing.T) {
				var h fasthttp.RequestHeader
				if parsed {
					raw := "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, X-Private , keep-alive\r\n"
					for _, k := range []string{"keep-alive", "TE", "Trailer", "upgrade", "x-private", "Proxy-Authorization", "X-Kept"} {
						raw += k + ": v\r\n"
					}
					if err := h.Read(bufio.NewReader(strings.NewReader(raw + "\r\n"))); err != nil {
						t.Fatal(err)
					}
				} else {
					h.Set("Connection", "Upgrade, X-Private , keep-alive")
					for _, k := range []string{"Keep-Alive", "Te", "Trailer", "Upgrade", "X-Private", "Proxy-Authorization", "X-Kept"} {
						h.Set(k, "v")
					}
				}
				stripRequestHopByHop(&h, tc.keepUpgrade)
				for _, k := range tc.gone {
					if v := h.Peek(k); v != nil {
						t.Errorf("%s survived: %q", k, v)
					}
				}
				for _, k := range tc.kept {
					if h.Peek(k) == nil {
						t.Errorf("%s was removed", k)
					}
				}
			})
		}
	}
}

func FuzzCommaTokens(f *testing.F) {
	for _, s := range []string{"", ",", "Upgrade", "keep-alive, Upgrade", " , ,x,,", strings.Repeat("a,", 100), "\x00,\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		toks := commaTokens([]byte(s))
		seenNil := false
		for _, tok := range toks {
			if tok == nil {
				seenNil = true
				continue
			}
			if seenNil {
				t.Fatal("a token after an empty slot")
			}
			if len(tok) == 0 || bytes.ContainsRune(tok, ',') || len(bytes.TrimSpace(tok)) != len(tok) {
				t.Fatalf("bad token %q from %q", tok, s)
			}
			if !bytes.Contains([]byte(s), tok) {
				t.Fatalf("token %q is not in %q", tok, s)
			}
		}
	})
}

func TestAPanickingHandlerCostsOneRequestNotTheProcess(t *testing.T) {
	s := New(nil, Options{})
	h := s.recovering(func(*fasthttp.RequestCtx) { panic("a bug on some input") })
	var ctx fasthttp.RequestCtx
	h(&ctx)
	if ctx.Response.StatusCode() != fasthttp.StatusInternalServerError || !ctx.Response.ConnectionClose() {
		t.Fatalf("status %d, close %v; want 500 and a closed connection", ctx.Response.StatusCode(), ctx.Response.ConnectionClose())
	}
}

func TestHopByHopResponseHeadersAreStripped(t *testing.T) {
	for _, tc := range []struct {
		name, extra string
	}{
		{"a response without Trailer is walked once", ""},
		{"a response announcing a Trailer loses it too", "Trailer: X-Sum\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := "HTTP/1.1 200 OK\r\nConnection: close, X-Private\r\nKeep-Alive: timeout=5\r\n" +
				"Transfer-Encoding: chunked\r\nProxy-Authenticate: Basic\r\nX-Private: v\r\nX-Kept: v\r\n" + tc.extra + "\r\n"
			var h fasthttp.ResponseHeader
			if err := h.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
				t.Fatal(err)
			}
			stripResponseHopByHop(&h, false)
			for _, k := range []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "X-Private", "Trailer"} {
				if v := h.Peek(k); v != nil {
					t.Errorf("%s survived: %q", k, v)
				}
			}
			if h.Peek("X-Kept") == nil {
				t.Error("X-Kept was removed")
			}
			if h.ConnectionClose() {
				t.Error("the backend's Connection: close would close the client's connection")
			}
		})
	}
}

func TestHopBitKnowsEachHopByHopNameInAnyCaseAndNothingElse(t *testing.T) {
	for i, h := range hopByHop {
		for _, name := range []string{string(h), strings.ToLower(string(h)), strings.ToUpper(string(h))} {
			if got := hopBit([]byte(name)); got != 1<<i {
				t.Errorf("hopBit(%q) = %b, want %b", name, got, 1<<i)
			}
		}
	}
	// Names as long as hop-by-hop ones, and longer than any.
	for _, name := range []string{"", "T", "TX", "User-Agent", "Referer", "Expires", "Proxy-Connectiox",
		"Transfer-Encodinh", "Proxy-Authorizatio", "X-Very-Long-Header-Name-Beyond-Any-Hop"} {
		if got := hopBit([]byte(name)); got != 0 {
			t.Errorf("hopBit(%q) = %b, want 0", name, got)
		}
	}
}

// A client that is not a trusted proxy cannot smuggle its own forwarding
// headers past latch by spelling their names in another case: a parsed
// request's names are canonical, so latch's value replaces the client's.
func TestForwardedHeadersOfAnyCaseFromAnUntrustedClientAreReplaced(t *testing.T) {
	s := New(nil, Options{})
	var req fasthttp.Request
	raw := "GET / HTTP/1.1\r\nHost: chat.example\r\nx-forwarded-for: 6.6.6.6\r\nX-FORWARDED-PROTO: https\r\nx-Forwarded-host: evil.example\r\n\r\n"
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(192, 0, 2, 9), Port: 40000}, nil)
	s.setForwarded(&ctx, false)
	out := string(ctx.Request.Header.Header())
	for name, want := range map[string]string{
		"X-Forwarded-For": "192.0.2.9", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "chat.example",
	} {
		if n := strings.Count(strings.ToLower(out), strings.ToLower(name)+":"); n != 1 {
			t.Errorf("%s appears %d times in\n%s", name, n, out)
		}
		if got := string(ctx.Request.Header.Peek(name)); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}
