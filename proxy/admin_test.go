package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/valyala/fasthttp"

	"github.com/latch-proxy/latch/balancer"
	"github.com/latch-proxy/latch/proxy/config"
)

// adminGet calls the admin handler of s for path, with a bearer token when
// token is not empty.
func adminGet(t *testing.T, s *Server, path, token string) (int, []byte) {
	t.Helper()
	var ctx fasthttp.RequestCtx
	ctx.Init(&fasthttp.Request{}, nil, nil)
	ctx.Request.SetRequestURI(path)
	if token != "" {
		ctx.Request.Header.Set("Authorization", "Bearer "+token)
	}
	s.adminHandler(s.newRegistry())(&ctx)
	return ctx.Response.StatusCode(), append([]byte(nil), ctx.Response.Body()...)
}

// scrape parses /metrics into "name{label=value,...}" -> value, labels
// sorted by name, the way a test wants to look them up.
func scrape(t *testing.T, s *Server) map[string]float64 {
	t.Helper()
	status, body := adminGet(t, s, "/metrics", "")
	if status != 200 {
		t.Fatalf("/metrics answered %d: %s", status, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	out := map[string]float64{}
	for name, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			slices.Sort(ls)
			key := name + "{" + strings.Join(ls, ",") + "}"
			switch {
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[name+"_count{"+strings.Join(ls, ",")+"}"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func TestMetricsCountEveryStickyHitOnItsBackendAndReason(t *testing.T) {
	h := newHotPath(t, nil) // one request so far: a new session
	const hits = 25
	for range hits {
		if h.do() != fasthttp.StatusOK {
			t.Fatal("not 200")
		}
	}
	backend := h.s.Table().pools["chat"].members[0].ep.Addr
	m := scrape(t, h.s)
	for key, want := range map[string]float64{
		"latch_requests_total{backend=" + backend + ",code=2xx,entrypoint=web,route=chat,service=chat}": hits + 1,
		"latch_sticky_decisions_total{backend=" + backend + ",reason=hit,route=chat,service=chat}":      hits,
		"latch_sticky_decisions_total{backend=" + backend + ",reason=new,route=chat,service=chat}":      1,
		"latch_sticky_cookies_issued_total{backend=" + backend + ",route=chat,service=chat}":            1,
		"latch_request_duration_seconds_count{route=chat,service=chat}":                                 hits + 1,
		"latch_backend_state{backend=" + backend + ",id=" + backend + ",service=chat,state=ready}":      1,
		"latch_backend_state{backend=" + backend + ",id=" + backend + ",service=chat,state=down}":       0,
		"latch_service_endpoints{service=chat,state=ready}":                                             1,
		"latch_backend_tunnels{backend=" + backend + ",service=chat}":                                   0,
		"latch_backend_inflight_requests{backend=" + backend + ",service=chat}":                         0,
		"latch_table_builds_total{}": float64(h.s.metrics.builds.Load()),
	} {
		if got, ok := m[key]; !ok || got != want {
			t.Errorf("%s = %v (present: %v); want %v", key, got, ok, want)
		}
	}
	if _, ok := m["go_goroutines{}"]; !ok {
		t.Error("the Go runtime collector is missing")
	}
	var info bool
	for k := range m {
		info = info || strings.HasPrefix(k, "latch_build_info{")
	}
	if !info {
		t.Error("latch_build_info is missing")
	}

	// A request that matches no route counts without route or backend.
	h.ctx.Request.Reset()
	h.ctx.Request.SetRequestURI("/nowhere")
	h.s.serve(&h.ctx, "web")
	h.ctx.Response.Reset()
	m = scrape(t, h.s)
	if got := m["latch_requests_total{backend=,code=4xx,entrypoint=web,route=,service=}"]; got != 1 {
		t.Errorf("unrouted 404s = %v; want 1", got)
	}

	// The services API reads the same counters.
	status, body := adminGet(t, h.s, "/api/services", "")
	var svcs []ServiceView
	if err := json.Unmarshal(body, &svcs); status != 200 || err != nil {
		t.Fatalf("/api/services: %d %v %s", status, err, body)
	}
	if len(svcs) != 1 || len(svcs[0].Backends) != 1 {
		t.Fatalf("/api/services = %s", body)
	}
	b := svcs[0].Backends[0]
	if b.Requests != hits+1 || b.StickyHits != hits || b.StickySessions != 1 || b.State != "ready" {
		t.Errorf("backend view = %+v; want %d requests, %d hits, 1 session, ready", b, hits+1, hits)
	}

	// The recent decisions hold the new session and the first hit.
	var reasons []string
	for _, d := range h.s.RecentDecisions() {
		reasons = append(reasons, d.Reason)
	}
	if !slices.Contains(reasons, "new") || !slices.Contains(reasons, "hit") {
		t.Errorf("recent decisions = %v; want a new and a hit", reasons)
	}
}

func TestMetricsOffCountNothingAndStillServeState(t *testing.T) {
	h := newHotPathOpts(t, Options{DisableMetrics: true})
	h.do()
	m := scrape(t, h.s)
	for k := range m {
		if strings.HasPrefix(k, "latch_requests_total") {
			t.Errorf("%s is exported with metrics off", k)
		}
	}
	if m["latch_service_endpoints{service=chat,state=ready}"] != 1 {
		t.Error("state metrics are missing with counting off")
	}
}

func TestTheAdminTokenGuardsEverythingButPingAndTheDashboardPage(t *testing.T) {
	h := newHotPathOpts(t, Options{AdminToken: "s3cret-token-0123456789"})
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/ping", "", 200},
		{"/dashboard/", "", 200},
		{"/dashboard/app.js", "", 200},
		{"/metrics", "", 401},
		{"/api/routes", "", 401},
		{"/api/services", "wrong", 401},
		{"/api/services", "s3cret-token-0123456789", 200},
		{"/metrics", "s3cret-token-0123456789", 200},
		{"/debug/pprof/", "s3cret-token-0123456789", 404}, // off without Pprof
	} {
		h.s.ready.Store(true)
		if got, body := adminGet(t, h.s, tc.path, tc.token); got != tc.want {
			t.Errorf("GET %s with token %q = %d; want %d (%s)", tc.path, tc.token, got, tc.want, body)
		}
	}
}

func TestPprofIsServedOnlyWhenAskedFor(t *testing.T) {
	h := newHotPathOpts(t, Options{Pprof: true})
	if got, body := adminGet(t, h.s, "/debug/pprof/goroutine?debug=1", ""); got != 200 || !bytes.Contains(body, []byte("goroutine")) {
		t.Errorf("/debug/pprof/goroutine = %d %.100s", got, body)
	}
}

func TestTheDashboardIsSelfContained(t *testing.T) {
	h := newHotPath(t, nil)
	_, page := adminGet(t, h.s, "/dashboard/", "")
	_, js := adminGet(t, h.s, "/dashboard/app.js", "")
	for _, b := range [][]byte{page, js} {
		if m := regexp.MustCompile(`(?i)(src|href)=["']?(https?:)?//`).Find(b); m != nil {
			t.Errorf("the dashboard loads an external asset: %s", m)
		}
	}
	if !bytes.Contains(js, []byte("/api/services")) {
		t.Error("app.js does not poll /api/services")
	}
}

// explainServer is a Server with two static backends (never dialled) and a
// sticky route whose cookie lives 10 minutes, sealing with keys[0].
func explainServer(t testing.TB, kr *balancer.Keyring) (*Server, [2]netip.AddrPort) {
	t.Helper()
	addrs := [2]netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:3000"), netip.MustParseAddrPort("10.0.0.2:3000")}
	cfg := &config.Config{
		Entrypoints: []config.Entrypoint{{Name: "web", Addr: "127.0.0.1:0"}},
		Services:    []config.Service{{Name: "chat", Kind: config.Static, Addrs: addrs[:]}},
		Routes: []config.Route{
			{Name: "chat", Rule: "PathPrefix(`/socket.io`)", Service: "chat",
				Sticky: &config.Cookie{Name: "heyy", HTTPOnly: true, Path: "/", MaxAge: 10 * time.Minute}},
			{Name: "catchall", Rule: "PathPrefix(`/`)", Service: "chat"},
		},
	}
	s := New(cfg.Entrypoints, Options{Keyring: kr, Log: slog.New(slog.DiscardHandler)})
	if err := s.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	waitPublished(t, s)
	t.Cleanup(s.ctrl.stop)
	return s, addrs
}

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// otherBase64URL returns a base64url character other than c.
func otherBase64URL(c byte) byte {
	if c == 'A' {
		return 'B'
	}
	return 'A'
}

func TestExplainSaysWhichRouteMatchesAndWhatTheCookieDecodesTo(t *testing.T) {
	current, err := balancer.NewKeyring([][]byte{testKey(1), testKey(2)})
	if err != nil {
		t.Fatal(err)
	}
	older, _ := balancer.NewKeyring([][]byte{testKey(2)})
	retired, _ := balancer.NewKeyring([][]byte{testKey(3)})
	s, addrs := explainServer(t, current)
	now := time.Now()
	a, b := addrs[0], addrs[1]
	fresh := current.Seal(a.String(), a, now.Unix()-30)
	forged := []byte(current.Seal(b.String(), b, now.Unix()))
	forged[5] = otherBase64URL(forged[5]) // a tag byte: still a token, no longer authentic

	for _, tc := range []struct {
		name, path, cookie    string
		route, reason, format string
		backend               string
		setCookie             bool
		status                int
	}{
		{"no cookie is a new session", "/socket.io/", "", "chat", "new", "", "", true, 0},
		{"a fresh token is a hit on its backend", "/socket.io/", "heyy=" + fresh, "chat", "hit", "latch", a.String(), false, 0},
		{"a bare cookie value is read too", "/socket.io/", fresh, "chat", "hit", "latch", a.String(), false, 0},
		{"a token older than cookie-max-age has expired", "/socket.io/", "heyy=" + current.Seal(b.String(), b, now.Unix()-3600), "chat", "expired", "latch", "", true, 0},
		{"a token of an older key still loaded is a hit, re-signed", "/socket.io/", "heyy=" + older.Seal(b.String(), b, now.Unix()), "chat", "hit", "latch", b.String(), true, 0},
		{"a token of a retired key is unknown", "/socket.io/", "heyy=" + retired.Seal(a.String(), a, now.Unix()), "chat", "unknown", "latch-unverified", "", true, 0},
		{"a forged token fails authentication", "/socket.io/", "heyy=" + string(forged), "chat", "bad-mac", "latch-unverified", "", true, 0},
		{"Traefik v2.5's cookie keeps its backend and is rewritten", "/socket.io/", "heyy=" + balancer.TraefikCookieValues(b)[balancer.TraefikFNV1a], "chat", "traefik-upgraded", "traefik", b.String(), true, 0},
		{"Traefik v3's cookie too", "/socket.io/", "heyy=" + balancer.TraefikCookieValues(a)[balancer.TraefikSHA256], "chat", "traefik-upgraded", "traefik", a.String(), true, 0},
		{"garbage is unknown", "/socket.io/", "heyy=not-a-token", "chat", "unknown", "unknown", "", true, 0},
		{"a route without a cookie has no sticky decision", "/index.html", "heyy=" + fresh, "catchall", "-", "", "", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := "/api/explain?method=GET&host=chat.example&path=" + urlQueryEscape(tc.path) + "&cookie=" + urlQueryEscape(tc.cookie)
			status, body := adminGet(t, s, q, "")
			var e Explanation
			if err := json.Unmarshal(body, &e); status != 200 || err != nil {
				t.Fatalf("%d %v %s", status, err, body)
			}
			if e.Route == nil || e.Route.Name != tc.route {
				t.Fatalf("route = %+v; want %s\n%s", e.Route, tc.route, body)
			}
			if e.Decision.Reason != tc.reason || e.Decision.SetCookie != tc.setCookie || e.Decision.Status != tc.status {
				t.Errorf("decision = %+v; want reason %s, set cookie %v, status %d", e.Decision, tc.reason, tc.setCookie, tc.status)
			}
			if tc.format != "" && (e.Cookie == nil || e.Cookie.Format != tc.format) {
				t.Errorf("cookie = %+v; want format %s", e.Cookie, tc.format)
			}
			if tc.backend != "" {
				if e.Decision.Backend == nil || e.Decision.Backend.Addr != tc.backend {
					t.Errorf("decision backend = %+v; want %s", e.Decision.Backend, tc.backend)
				}
				if e.Cookie != nil && (e.Cookie.Backend == nil || e.Cookie.Backend.Addr != tc.backend) {
					t.Errorf("cookie backend = %+v; want %s", e.Cookie.Backend, tc.backend)
				}
			}
			if tc.reason == "new" && len(e.Decision.Candidates) != 2 {
				t.Errorf("candidates = %+v; want both backends", e.Decision.Candidates)
			}
		})
	}

	t.Run("a latch token tells its key and age", func(t *testing.T) {
		e := s.Table().Explain(ExplainQuery{Path: "/socket.io/", Cookie: "heyy=" + fresh}, current, now)
		c := e.Cookie
		if c == nil || c.KeyIndex == nil || *c.KeyIndex != 0 || c.AgeSeconds == nil || *c.AgeSeconds != 30 || c.KeyID == "" || c.Expired {
			t.Fatalf("cookie = %+v", c)
		}
	})
	t.Run("nothing matches: 404", func(t *testing.T) {
		e := s.Table().Explain(ExplainQuery{Host: "x", Path: "/"}, current, now)
		if !e.Matched || e.Route.Name != "catchall" {
			t.Fatalf("/ should match the catch-all: %+v", e)
		}
		e = s.Table().Explain(ExplainQuery{Entrypoint: "nope", Path: "/"}, current, now)
		if e.Matched {
			t.Fatalf("an unknown entrypoint matched: %+v", e)
		}
	})
	t.Run("a more specific route outranks the catch-all, and says so", func(t *testing.T) {
		e := s.Table().Explain(ExplainQuery{Path: "/socket.io/"}, current, now)
		if len(e.AlsoMatching) != 1 || e.AlsoMatching[0].Name != "catchall" || !strings.Contains(e.Why, "outranks") {
			t.Fatalf("explanation = %+v", e)
		}
	})
}

func urlQueryEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func TestAccessLogFormats(t *testing.T) {
	r := &route{name: `chat "x"`, service: "chat"}
	b := balancer.NewBackend("pod-a", "10.0.0.1:3000")
	start := time.Now().Add(-1500 * time.Microsecond)
	peer := netip.MustParseAddr("192.0.2.7")

	var text bytes.Buffer
	a := newAccessLog(&text, AccessLogText)
	a.record(start, r, b, 200, reasonHit, []byte("GET"), []byte("/socket.io/ \"evil\"\n"), peer, 22)
	a.record(start, nil, nil, 404, reasonNone, []byte("GET"), []byte("/"), netip.Addr{}, 37)
	a.flush()
	lines := strings.Split(strings.TrimSpace(text.String()), "\n")
	clf := regexp.MustCompile(`^192\.0\.2\.7 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET /socket\.io/\\x20\\"evil\\"\\x0a HTTP/1\.1" 200 22 route="chat \\"x\\"" service=chat backend=10\.0\.0\.1:3000 duration_ms=\d+\.\d{3} sticky=hit$`)
	if len(lines) != 2 || !clf.MatchString(lines[0]) {
		t.Fatalf("text line does not read as common log format plus latch's fields:\n%s", text.String())
	}
	if !regexp.MustCompile(`^- - - \[.*\] "GET / HTTP/1\.1" 404 37 route=- service=- backend=- duration_ms=\S+ sticky=-$`).MatchString(lines[1]) {
		t.Errorf("unrouted line = %q", lines[1])
	}

	var js bytes.Buffer
	a = newAccessLog(&js, AccessLogJSON)
	a.record(start, r, b, 200, reasonHit, []byte("GET"), []byte("/p\xff\"q"), peer, 22)
	a.flush()
	var v map[string]any
	if err := json.Unmarshal(js.Bytes(), &v); err != nil {
		t.Fatalf("JSON line does not parse: %v\n%s", err, js.String())
	}
	for k, want := range map[string]any{"client": "192.0.2.7", "method": "GET", "path": "/p\u00ff\"q", "status": 200.0,
		"bytes": 22.0, "route": `chat "x"`, "service": "chat", "backend": "10.0.0.1:3000", "sticky": "hit"} {
		if v[k] != want {
			t.Errorf("%s = %#v; want %#v", k, v[k], want)
		}
	}
	if d, _ := v["duration_ms"].(float64); d < 1 {
		t.Errorf("duration_ms = %v; want about 1.5", v["duration_ms"])
	}
}

func TestTheAccessLogFileIsReopenedAfterRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	f, err := OpenLogFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a := newAccessLog(f, AccessLogText)
	a.record(time.Now(), nil, nil, 404, reasonNone, []byte("GET"), []byte("/before"), netip.Addr{}, 0)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := a.reopen(); err != nil { // flushes into the rotated file first
		t.Fatal(err)
	}
	a.record(time.Now(), nil, nil, 404, reasonNone, []byte("GET"), []byte("/after"), netip.Addr{}, 0)
	a.flush()
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if !bytes.Contains(old, []byte("/before")) || bytes.Contains(old, []byte("/after")) || !bytes.Contains(cur, []byte("/after")) {
		t.Fatalf("rotated file %q, new file %q", old, cur)
	}
}

func TestRecentDecisionsKeepTheNewestFirst(t *testing.T) {
	var r recentDecisions
	rt := &route{name: "chat", service: "chat"}
	for i := range recentSize + 10 {
		r.add(int64(i), rt, nil, reasonNew, 200+i, true)
	}
	got := r.snapshot()
	if len(got) != recentSize || got[0].Status != 200+recentSize+9 || got[len(got)-1].Status != 210 {
		t.Fatalf("snapshot: %d entries, first status %d, last %d", len(got), got[0].Status, got[len(got)-1].Status)
	}
	if got[0].Reason != "new" || !got[0].SetCookie || got[0].Route != "chat" {
		t.Fatalf("entry = %+v", got[0])
	}
}
