package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/latch-proxy/latch/proxy/config"
)

// acmeTestIssuer is an issuer for websecure whose CA cannot be reached,
// over a table with the given rules (each on the listed entrypoints).
func acmeTestIssuer(t *testing.T, extra []string, routes ...config.Route) (*acmeIssuer, *Table) {
	t.Helper()
	cfg := &config.Config{
		Entrypoints: []config.Entrypoint{{Name: "web", Addr: ":80"}, {Name: "websecure", Addr: ":443"}},
		Services:    []config.Service{{Name: "chat", Kind: config.Static, Addrs: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")}}},
	}
	for i := range routes {
		routes[i].Service = "chat"
		cfg.Routes = append(cfg.Routes, routes[i])
	}
	table, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := newACMEIssuer(ACME{
		Entrypoint: "websecure", HTTPEntrypoints: []string{"web"}, Hosts: extra,
		DirectoryURL: "https://127.0.0.1:1/dir", CacheDir: t.TempDir(),
	}, func() *Table { return table }, slog.New(slog.DiscardHandler))
	return a, table
}

func TestACMEHostPolicyAllowsOnlyNamedHosts(t *testing.T) {
	a, _ := acmeTestIssuer(t, []string{"Extra.test"},
		config.Route{Rule: "Host(`chat.test`) && PathPrefix(`/socket.io`)"},
		config.Route{Rule: "Host(`plain.test`)", Entrypoints: []string{"web"}},
		config.Route{Rule: "!Host(`not.test`)", Entrypoints: []string{"websecure"}},
		config.Route{Rule: "Host(`secure.test`)", Entrypoints: []string{"websecure"}},
	)
	for host, want := range map[string]bool{
		"chat.test":      true,
		"CHAT.test.":     true,
		"chat.test:8000": true,
		"secure.test":    true,
		"extra.test":     true,
		"plain.test":     false, // its route is not on the ACME entrypoint
		"not.test":       false, // negated
		"stranger.test":  false,
		"":               false,
	} {
		err := a.allow(context.Background(), host)
		if (err == nil) != want {
			t.Errorf("allow(%q) = %v; want allowed %v", host, err, want)
		}
		if err != nil && !errors.Is(err, errACMEHostNotAllowed) {
			t.Errorf("allow(%q) = %v; want errACMEHostNotAllowed", host, err)
		}
	}
}

func TestACMEHostPolicyFollowsTheTableInUse(t *testing.T) {
	a, first := acmeTestIssuer(t, nil, config.Route{Rule: "Host(`old.test`)"})
	_, second := acmeTestIssuer(t, nil, config.Route{Rule: "Host(`new.test`)"})
	second.version = first.version + 1
	current := first
	a.table = func() *Table { return current }
	if a.allow(context.Background(), "old.test") != nil {
		t.Fatal("old.test refused under the first table")
	}
	current = second
	if a.allow(context.Background(), "old.test") == nil || a.allow(context.Background(), "new.test") != nil {
		t.Fatal("the policy did not follow the new table")
	}
	current = nil
	if a.allow(context.Background(), "new.test") == nil {
		t.Fatal("a host was allowed before any table")
	}
}

func TestACMEHTTPHandlerAnswersChallengesBeforeRouting(t *testing.T) {
	a, _ := acmeTestIssuer(t, nil, config.Route{Rule: "Host(`chat.test`)"})
	var routed int
	next := func(ctx *fasthttp.RequestCtx) { routed++; ctx.SetStatusCode(fasthttp.StatusTeapot) }
	serve := func(entrypoint, host, path string) int {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetHost(host)
		ctx.Request.SetRequestURI(path)
		a.httpHandler(entrypoint, next)(&ctx)
		return ctx.Response.StatusCode()
	}
	if got := serve("web", "chat.test", "/.well-known/acme-challenge/unknown"); got != fasthttp.StatusNotFound || routed != 0 {
		t.Errorf("an unknown token: status %d, routed %d; want 404 without routing", got, routed)
	}
	if got := serve("web", "stranger.test", "/.well-known/acme-challenge/x"); got != fasthttp.StatusForbidden || routed != 0 {
		t.Errorf("a stranger's host: status %d, routed %d; want 403 without routing", got, routed)
	}
	if got := serve("web", "chat.test", "/.well-known/other"); got != fasthttp.StatusTeapot || routed != 1 {
		t.Errorf("another path: status %d, routed %d; want routing", got, routed)
	}
	if got := serve("websecure", "chat.test", "/.well-known/acme-challenge/x"); got != fasthttp.StatusTeapot || routed != 2 {
		t.Errorf("a challenge path on a non-http-01 entrypoint: status %d, routed %d; want routing", got, routed)
	}
	var off *acmeIssuer
	if got := off.httpHandler("web", next); got == nil {
		t.Error("a nil issuer dropped the handler")
	}
}

func TestACMETLSConfig(t *testing.T) {
	a, _ := acmeTestIssuer(t, nil, config.Route{Rule: "Host(`chat.test`)"})
	base := &tls.Config{NextProtos: []string{"http/1.1"}}
	if a.tlsConfig("web", base) != base {
		t.Error("a non-ACME entrypoint's config was changed")
	}
	var off *acmeIssuer
	if off.tlsConfig("websecure", base) != base || off.serves("websecure") {
		t.Error("a nil issuer changed a config")
	}
	cfg := a.tlsConfig("websecure", nil)
	if !slices.Equal(cfg.NextProtos, []string{"http/1.1", "acme-tls/1"}) || cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("ACME-only config: NextProtos %q, MinVersion %x; want latch's parameters plus acme-tls/1", cfg.NextProtos, cfg.MinVersion)
	}
	if _, err := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: "stranger.test"}); !errors.Is(err, errACMEHostNotAllowed) {
		t.Errorf("a stranger's SNI: %v; want errACMEHostNotAllowed", err)
	}
	if _, err := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: "chat.test", SupportedProtos: []string{"acme-tls/1"}}); err == nil {
		t.Error("a tls-alpn-01 hello without a pending challenge got a certificate")
	}
}
