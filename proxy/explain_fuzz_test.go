package proxy

import (
	"slices"
	"testing"
	"time"

	"github.com/latch-proxy/latch/balancer"
)

// FuzzExplain feeds /api/explain's inputs, the cookie above all, to
// Table.Explain and checks what it says: a known reason code, a backend
// only from the pool, a cookie format from the documented set, and a
// decision that agrees with the live lookup.
func FuzzExplain(f *testing.F) {
	kr, err := balancer.NewKeyring([][]byte{testKey(1), testKey(2)})
	if err != nil {
		f.Fatal(err)
	}
	s, addrs := explainServer(f, kr)
	now := time.Unix(1_800_000_000, 0)
	tok := kr.Seal(addrs[0].String(), addrs[0], now.Unix())
	for _, seed := range []struct{ method, host, path, cookie string }{
		{"GET", "chat.example", "/socket.io/?EIO=4", ""},
		{"GET", "", "/socket.io/", "heyy=" + tok},
		{"POST", "x", "/socket.io/%2e%2e/", tok},
		{"GET", "", "/", "a=b; heyy=" + balancer.TraefikCookieValues(addrs[1])[balancer.TraefikRaw]},
		{"", "", "", "heyy=" + tok[:len(tok)-1] + "A"},
		{"GET", "h", "/socket.io", ";;heyy=;heyy==="},
	} {
		f.Add(seed.method, seed.host, seed.path, seed.cookie)
	}
	reasons := reasonNames[:]
	formats := []string{"latch", "latch-unverified", "traefik", "unknown"}
	t := s.Table()
	f.Fuzz(func(tt *testing.T, method, host, path, cookie string) {
		e := t.Explain(ExplainQuery{Method: method, Host: host, Path: path, Cookie: cookie}, kr, now)
		if !slices.Contains(reasons, e.Decision.Reason) {
			tt.Fatalf("unknown reason %q", e.Decision.Reason)
		}
		inPool := func(addr string) bool { return addr == addrs[0].String() || addr == addrs[1].String() }
		if b := e.Decision.Backend; b != nil && !inPool(b.Addr) {
			tt.Fatalf("a backend outside the pool: %+v", b)
		}
		if c := e.Cookie; c != nil {
			if !slices.Contains(formats, c.Format) {
				tt.Fatalf("unknown cookie format %q", c.Format)
			}
			if c.Valid != (c.Format == "latch" || c.Format == "traefik") {
				tt.Fatalf("valid %v with format %s", c.Valid, c.Format)
			}
		}
		if e.Matched != (e.Route != nil) {
			tt.Fatalf("matched %v with route %+v", e.Matched, e.Route)
		}
		if !e.Matched && e.Decision.Status != 404 {
			tt.Fatalf("no route but status %d", e.Decision.Status)
		}
	})
}
