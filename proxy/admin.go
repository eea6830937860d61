package proxy

import (
	"bytes"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"io/fs"
	"mime"
	"net/netip"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"
)

// RouteView is one route as the admin API and `latch check` show it.
type RouteView struct {
	Name        string        `json:"name"`
	Rule        string        `json:"rule"`
	Priority    int           `json:"priority"`
	Entrypoints []string      `json:"entrypoints,omitempty"`
	Service     string        `json:"service"`
	Strategy    string        `json:"strategy"`
	Cookie      string        `json:"cookie,omitempty"`
	Strict      bool          `json:"strict,omitempty"`
	Origin      string        `json:"origin,omitempty"`
	Backends    []BackendView `json:"backends"`
}

// BackendView is one backend of a route's service.
type BackendView struct {
	ID          string `json:"id"`
	Addr        string `json:"addr"`
	Ready       bool   `json:"ready"`
	Serving     bool   `json:"serving"`
	Terminating bool   `json:"terminating"`
	Up          bool   `json:"up"`
	Load        int64  `json:"load"`
}

// Routes describes the table's routes in the order they are tried (highest
// priority first, then the longer rule), as plain values safe to keep.
func (t *Table) Routes() []RouteView {
	now := time.Now().UnixNano()
	out := make([]RouteView, 0, len(t.routes))
	for _, r := range t.routes {
		v := RouteView{
			Name: r.name, Rule: r.ruleText, Priority: r.priority,
			Entrypoints: r.entrypoints, Service: r.service, Strategy: r.strategy,
			Strict: r.strict, Origin: r.origin, Backends: []BackendView{},
		}
		if r.sticky != nil {
			v.Cookie = r.sticky.name
		}
		for _, m := range r.pool.members {
			v.Backends = append(v.Backends, BackendView{
				ID: m.ep.ID, Addr: m.ep.Addr, Ready: m.ep.Ready, Serving: m.ep.Serving,
				Terminating: m.ep.Terminating, Up: m.up.backend.Up(now), Load: m.up.backend.Load(),
			})
		}
		out = append(out, v)
	}
	slices.SortStableFunc(out, func(a, b RouteView) int {
		if a.Priority != b.Priority {
			return b.Priority - a.Priority
		}
		return len(b.Rule) - len(a.Rule)
	})
	return out
}

// Ready reports whether every service has published its endpoints once.
func (t *Table) Ready() bool {
	for _, p := range t.pools {
		if !p.published {
			return false
		}
	}
	return true
}

// ServiceView is one service as /api/services shows it.
type ServiceView struct {
	Name string `json:"name"`
	// Published is false until the service's discovery reported once.
	Published bool `json:"published"`
	// Endpoints counts the backends per state: ready, draining, down.
	Endpoints map[string]int       `json:"endpoints"`
	Routes    []string             `json:"routes"`
	Backends  []ServiceBackendView `json:"backends"`
}

// ServiceBackendView is one backend with its live counts. Counts are since
// latch started (or since the backend appeared) and read without locks, so
// they may be a request apart from each other.
type ServiceBackendView struct {
	ID          string `json:"id"`
	Addr        string `json:"addr"`
	State       string `json:"state"` // ready, draining or down
	Ready       bool   `json:"ready"`
	Serving     bool   `json:"serving"`
	Terminating bool   `json:"terminating"`
	Up          bool   `json:"up"`
	InFlight    int64  `json:"in_flight"`
	Tunnels     int64  `json:"tunnels"`
	Requests    uint64 `json:"requests"`
	// StickyHits counts requests whose cookie kept them here.
	StickyHits uint64 `json:"sticky_hits"`
	// StickySessions counts the sticky sessions latch assigned to this
	// backend: cookies it set naming it (new sessions, sessions moved here,
	// rewritten cookies). latch keeps no per-client state, so sessions
	// that ended are not subtracted.
	StickySessions uint64 `json:"sticky_sessions"`
}

// upstreamCounts are one upstream's counters summed over its cells.
type upstreamCounts struct {
	requests, hits, cookies uint64
	tunnels                 int64
}

// perUpstream sums the counters by upstream key.
func (m *metrics) perUpstream() map[string]upstreamCounts {
	out := map[string]upstreamCounts{}
	for _, c := range m.snapshotCells() {
		if c.key.upstream == "" {
			continue
		}
		u := out[c.key.upstream]
		for i := range c.hist {
			u.requests += c.requests(i)
		}
		u.hits += c.reasons[reasonHit].Load() + c.reasons[reasonDrainingHold].Load()
		u.cookies += c.cookies.Load()
		u.tunnels += c.tunnels.Load()
		out[c.key.upstream] = u
	}
	return out
}

// Services describes every service of the table in use, sorted by name.
func (s *Server) Services() []ServiceView {
	t := s.table.Load()
	out := []ServiceView{}
	if t == nil {
		return out
	}
	counts := s.metrics.perUpstream()
	now := time.Now().UnixNano()
	for name, p := range t.pools {
		v := ServiceView{Name: name, Published: p.published, Endpoints: map[string]int{}, Routes: []string{}, Backends: []ServiceBackendView{}}
		for _, st := range backendStates {
			v.Endpoints[st] = 0
		}
		for _, r := range t.routes {
			if r.service == name {
				v.Routes = append(v.Routes, r.name)
			}
		}
		for i := range p.members {
			m := &p.members[i]
			c := counts[m.up.key]
			st := memberState(m, now)
			v.Endpoints[st]++
			v.Backends = append(v.Backends, ServiceBackendView{
				ID: m.ep.ID, Addr: m.ep.Addr, State: st, Ready: m.ep.Ready, Serving: m.ep.Serving,
				Terminating: m.ep.Terminating, Up: m.up.backend.Up(now),
				InFlight: max(m.up.backend.Load()-c.tunnels, 0), Tunnels: c.tunnels,
				Requests: c.requests, StickyHits: c.hits, StickySessions: c.cookies,
			})
		}
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b ServiceView) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// RecentDecisions returns the latest sticky decisions, newest first: every
// decision other than a plain hit, and a sample of hits.
func (s *Server) RecentDecisions() []DecisionView { return s.metrics.recent.snapshot() }

//go:embed dashboard
var dashboardFS embed.FS

var (
	jsonType        = []byte("application/json")
	metricsFormat   = expfmt.NewFormat(expfmt.TypeTextPlain)
	bearerPrefix    = []byte("Bearer ")
	wwwAuthenticate = `Bearer realm="latch admin"`
)

// newAdminServer serves the admin listener:
//
//	/ping                200 once listening with a table whose services all reported
//	/dashboard/          the live dashboard (static files; they hold no data)
//	/metrics             Prometheus text format
//	/api/routes          routes in match order
//	/api/services        services, backends and their live counts
//	/api/decisions       the latest sticky decisions
//	/api/version         build information
//	/api/explain         ?method=&host=&path=&cookie=&entrypoint=&ip=
//	/debug/pprof/        with Options.Pprof
//
// With Options.AdminToken everything but /ping and /dashboard/ needs
// "Authorization: Bearer TOKEN".
func (s *Server) newAdminServer() *fasthttp.Server {
	write := 10 * time.Second
	if s.opts.Pprof {
		write = 2 * time.Minute // CPU profiles and traces take 30 s by default
	}
	return &fasthttp.Server{
		Name:                  "latch-admin",
		NoDefaultServerHeader: true,
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          write,
		Logger:                fasthttpLogger{s.log},
		Handler:               s.recovering(s.adminHandler(s.newRegistry())),
	}
}

func (s *Server) adminHandler(reg *prometheus.Registry) fasthttp.RequestHandler {
	static, _ := fs.Sub(dashboardFS, "dashboard")
	return func(ctx *fasthttp.RequestCtx) {
		p := string(ctx.Path())
		switch {
		case p == "/ping":
			if s.Ready() {
				ctx.SetBodyString("OK")
				return
			}
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			ctx.SetBodyString("not ready")
			return
		case p == "/" || p == "/dashboard":
			ctx.Redirect("/dashboard/", fasthttp.StatusFound)
			return
		case strings.HasPrefix(p, "/dashboard/"):
			serveStatic(ctx, static, strings.TrimPrefix(p, "/dashboard/"))
			return
		}
		if !s.authorized(ctx) {
			ctx.Response.Header.Set("WWW-Authenticate", wwwAuthenticate)
			ctx.Error("unauthorized: send Authorization: Bearer TOKEN (--admin-token-file)", fasthttp.StatusUnauthorized)
			return
		}
		switch p {
		case "/metrics":
			s.serveMetrics(ctx, reg)
		case "/api/routes":
			routes := []RouteView{}
			if t := s.table.Load(); t != nil {
				routes = t.Routes()
			}
			writeJSON(ctx, routes)
		case "/api/services":
			writeJSON(ctx, s.Services())
		case "/api/decisions":
			writeJSON(ctx, s.RecentDecisions())
		case "/api/version":
			v := readBuildInfo()
			v.Started = s.metrics.started.UTC()
			if t := s.table.Load(); t != nil {
				v.Table = t.version
			}
			writeJSON(ctx, v)
		case "/api/explain":
			s.serveExplain(ctx)
		default:
			if s.opts.Pprof && strings.HasPrefix(p, "/debug/pprof") {
				pprofhandler.PprofHandler(ctx)
				return
			}
			ctx.Error("not found", fasthttp.StatusNotFound)
		}
	}
}

// authorized checks the bearer token in constant time.
func (s *Server) authorized(ctx *fasthttp.RequestCtx) bool {
	if s.opts.AdminToken == "" {
		return true
	}
	h := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	tok, ok := bytes.CutPrefix(h, bearerPrefix)
	return ok && subtle.ConstantTimeCompare(bytes.TrimSpace(tok), []byte(s.opts.AdminToken)) == 1
}

func (s *Server) serveMetrics(ctx *fasthttp.RequestCtx, reg *prometheus.Registry) {
	mfs, err := reg.Gather()
	if err != nil {
		// Gather returns what it could; say what failed and serve the rest.
		s.log.Warn("gathering metrics", "err", err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, metricsFormat)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
			return
		}
	}
	ctx.SetContentType(string(metricsFormat))
	ctx.SetBody(buf.Bytes())
}

func (s *Server) serveExplain(ctx *fasthttp.RequestCtx) {
	t := s.table.Load()
	if t == nil {
		ctx.Error("no routing table yet", fasthttp.StatusServiceUnavailable)
		return
	}
	args := ctx.QueryArgs()
	q := ExplainQuery{
		Entrypoint: string(args.Peek("entrypoint")),
		Method:     strings.ToUpper(string(args.Peek("method"))),
		Host:       string(args.Peek("host")),
		Path:       string(args.Peek("path")),
		Cookie:     string(args.Peek("cookie")),
		Headers:    map[string]string{},
	}
	if q.Entrypoint == "" && len(s.entrypoints) > 0 {
		q.Entrypoint = s.entrypoints[0].Name
	}
	if ip := args.Peek("ip"); len(ip) > 0 {
		a, err := netip.ParseAddr(string(ip))
		if err != nil {
			ctx.Error("ip: "+err.Error(), fasthttp.StatusBadRequest)
			return
		}
		q.ClientIP = a
	}
	for _, h := range args.PeekMulti("header") {
		k, v, ok := strings.Cut(string(h), ":")
		if !ok {
			ctx.Error("header: want NAME:VALUE", fasthttp.StatusBadRequest)
			return
		}
		q.Headers[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	writeJSON(ctx, t.Explain(q, s.opts.Keyring, time.Now()))
}

func writeJSON(ctx *fasthttp.RequestCtx, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
		return
	}
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetContentTypeBytes(jsonType)
	ctx.SetBody(append(b, '\n'))
}

// serveStatic serves one embedded dashboard file.
func serveStatic(ctx *fasthttp.RequestCtx, static fs.FS, name string) {
	if name == "" {
		name = "index.html"
	}
	b, err := fs.ReadFile(static, name)
	if err != nil {
		ctx.Error("not found", fasthttp.StatusNotFound)
		return
	}
	if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
		ctx.SetContentType(ct)
	}
	ctx.Response.Header.Set("Cache-Control", "no-cache")
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	ctx.Response.Header.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:")
	ctx.SetBody(b)
}
