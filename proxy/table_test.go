package proxy

import (
	"net/netip"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/latch-proxy/latch/balancer"
	"github.com/latch-proxy/latch/discovery"
	"github.com/latch-proxy/latch/proxy/config"
)

func testConfig(routes ...config.Route) *config.Config {
	return &config.Config{
		Entrypoints: []config.Entrypoint{{Name: "web", Addr: ":8000"}},
		Services:    []config.Service{{Name: "chat", Kind: config.Static}},
		Routes:      routes,
	}
}

var stickyChat = config.Route{Name: "chat", Rule: "PathPrefix(`/`)", Service: "chat",
	Sticky: &config.Cookie{Name: "heyy", HTTPOnly: true, Path: "/"}}

func buildWith(t *testing.T, prev *Table, cfg *config.Config, set discovery.Set) *Table {
	t.Helper()
	tb, err := build(prev, buildInput{
		cfg:     cfg,
		sets:    map[string]discovery.Set{"chat": set},
		keyring: balancer.BuiltinKeyring(),
		now:     time.Unix(1_800_000_000, 0),
		newHost: func(addr string) *fasthttp.HostClient { return &fasthttp.HostClient{Addr: addr} },
	})
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func ep(id, addr string, ready, serving, terminating bool) discovery.Endpoint {
	return discovery.Endpoint{ID: id, Addr: addr, Ready: ready, Serving: serving, Terminating: terminating}
}

func TestPerBackendStateSurvivesConfigAndEndpointChanges(t *testing.T) {
	set := discovery.Set{ep("pod-a", "10.0.0.1:80", true, true, false), ep("pod-b", "10.0.0.2:80", true, true, false)}
	t1 := buildWith(t, nil, testConfig(stickyChat), set)
	a := t1.pools["chat"].members[0].up
	a.backend.Acquire() // an open tunnel

	// A new route and pod-b leaving: pod-a's live state is the same object.
	other := config.Route{Name: "other", Rule: "Path(`/x`)", Service: "chat"}
	t2 := buildWith(t, t1, testConfig(stickyChat, other), set[:1])
	if got := t2.pools["chat"].members[0].up; got != a || got.backend.Load() != 1 {
		t.Fatalf("pod-a's state was not carried over: %p (load %d) != %p", got, got.backend.Load(), a)
	}
	if r := retired(t1, t2); len(r) != 1 || r[0].backend.ID() != "pod-b" {
		t.Fatalf("retired = %v; want pod-b only", r)
	}
	if t1.pools["chat"].members[1].up.backend.ID() != "pod-b" {
		t.Fatal("building a new table modified the previous one")
	}
}

func TestStickyLookup(t *testing.T) {
	set := discovery.Set{
		ep("pod-a", "10.0.0.1:80", true, true, false),
		ep("pod-b", "10.0.0.2:80", false, true, true),  // draining
		ep("pod-c", "10.0.0.3:80", false, false, true), // gone
	}
	tb := buildWith(t, nil, testConfig(stickyChat), set)
	r := tb.routes[0]
	p := r.pool
	now := time.Unix(1_800_000_100, 0).UnixNano()
	other, err := balancer.NewKeyring([][]byte{make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := balancer.NewKeyring([][]byte{make([]byte, 32), []byte("the built-in key is not this one, 32+ bytes")})
	if err != nil {
		t.Fatal(err)
	}
	_ = rotated
	traefik := balancer.TraefikCookieValues(netip.MustParseAddrPort("10.0.0.1:80"))

	for _, tc := range []struct {
		name    string
		cookie  string
		want    int32
		why     reason
		rewrite bool
	}{
		{"no cookie is a new session", "", -1, reasonNew, false},
		{"the table's token is a hit", p.members[0].up.token, 0, reasonHit, false},
		{"a draining backend keeps its sessions", p.members[1].up.token, 1, reasonDrainingHold, false},
		{"a backend that stopped serving is gone", p.members[2].up.token, -1, reasonBackendGone, false},
		{"another replica's token for the same pod is a hit", balancer.BuiltinKeyring().Seal("pod-a", netip.MustParseAddrPort("10.0.0.1:80"), 1), 0, reasonHit, false},
		{"a token for a pod this table lacks is backend-gone", balancer.BuiltinKeyring().Seal("pod-z", netip.MustParseAddrPort("10.0.0.9:80"), 1), -1, reasonBackendGone, false},
		{"a token under a key latch does not hold is unknown", other.Seal("pod-a", netip.MustParseAddrPort("10.0.0.1:80"), 1), -1, reasonUnknown, false},
		{"a Traefik v2.5 cookie is honoured and rewritten", traefik[balancer.TraefikFNV1a], 0, reasonTraefikUpgraded, true},
		{"a Traefik v3.3.4 cookie is honoured and rewritten", traefik[balancer.TraefikSHA256], 0, reasonTraefikUpgraded, true},
		{"garbage is unknown", "not a token", -1, reasonUnknown, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i, why, rewrite := r.sticky.lookup(p, balancer.BuiltinKeyring(), []byte(tc.cookie), now)
			if i != tc.want || why != tc.why || rewrite != tc.rewrite {
				t.Fatalf("lookup = (%d, %s, %v); want (%d, %s, %v)", i, why, rewrite, tc.want, tc.why, tc.rewrite)
			}
		})
	}
}

func TestATamperedTokenIsBadMAC(t *testing.T) {
	set := discovery.Set{ep("pod-a", "10.0.0.1:80", true, true, false)}
	tb := buildWith(t, nil, testConfig(stickyChat), set)
	r := tb.routes[0]
	tok := []byte(r.pool.members[0].up.token)
	tok[20] ^= 'A' ^ 'B' // stays in the base64url alphabet
	if tok[20] == r.pool.members[0].up.token[20] {
		t.Fatal("tamper did nothing")
	}
	_, why, _ := r.sticky.lookup(r.pool, balancer.BuiltinKeyring(), tok, time.Now().UnixNano())
	if why != reasonBadMAC && why != reasonUnknown {
		t.Fatalf("a tampered token gave %s; want bad-mac", why)
	}
}

func TestNewSessionsAvoidDrainingBackendsUntilNoneIsReady(t *testing.T) {
	draining := ep("pod-b", "10.0.0.2:80", false, true, true)
	tb := buildWith(t, nil, testConfig(stickyChat), discovery.Set{ep("pod-a", "10.0.0.1:80", true, true, false), draining})
	if c := tb.pools["chat"].candidates(); len(c) != 1 || c[0].ID() != "pod-a" {
		t.Fatalf("candidates = %v; want pod-a only", c)
	}
	tb = buildWith(t, tb, testConfig(stickyChat), discovery.Set{draining})
	if c := tb.pools["chat"].candidates(); len(c) != 1 || c[0].ID() != "pod-b" {
		t.Fatalf("with none ready, candidates = %v; want the serving-terminating pod-b", c)
	}
	gone := ep("pod-c", "10.0.0.3:80", false, false, true)
	tb = buildWith(t, tb, testConfig(stickyChat), discovery.Set{gone})
	if c := tb.pools["chat"].candidates(); len(c) != 0 {
		t.Fatalf("an endpoint neither ready nor serving is a candidate: %v", c)
	}
}

func TestSetCookieAttributes(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    config.Cookie
		tls  bool
		want string
	}{
		{"the defaults are Path=/, HttpOnly and SameSite=Lax", config.Cookie{Name: "heyy", HTTPOnly: true}, false, "heyy=T; Path=/; HttpOnly; SameSite=Lax"},
		{"behind TLS the cookie is Secure with SameSite=None", config.Cookie{Name: "heyy", HTTPOnly: true}, true, "heyy=T; Path=/; HttpOnly; Secure; SameSite=None"},
		{"a chosen SameSite wins over the TLS default", config.Cookie{Name: "heyy", SameSite: "strict"}, true, "heyy=T; Path=/; Secure; SameSite=Strict"},
		{"every attribute is rendered", config.Cookie{Name: "s", Path: "/chat", Domain: "example.com", MaxAge: time.Hour, Secure: true}, false, "s=T; Path=/chat; Domain=example.com; Max-Age=3600; Secure; SameSite=None"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := setCookie(tc.c, "T", tc.tls); got != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}
