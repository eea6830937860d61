package proxy

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/valyala/fasthttp"
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

var jsonType = []byte("application/json")

// newAdminServer serves /ping (200 once listening with a table whose
// services all reported) and /api/routes.
func (s *Server) newAdminServer() *fasthttp.Server {
	return &fasthttp.Server{
		Name:                  "latch-admin",
		NoDefaultServerHeader: true,
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          10 * time.Second,
		Logger:                fasthttpLogger{s.log},
		Handler: func(ctx *fasthttp.RequestCtx) {
			switch string(ctx.Path()) {
			case "/ping":
				if s.Ready() {
					ctx.SetBodyString("OK")
					return
				}
				ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
				ctx.SetBodyString("not ready")
			case "/api/routes":
				t := s.table.Load()
				routes := []RouteView{}
				if t != nil {
					routes = t.Routes()
				}
				b, err := json.MarshalIndent(routes, "", "  ")
				if err != nil {
					ctx.Error(err.Error(), fasthttp.StatusInternalServerError)
					return
				}
				ctx.SetContentTypeBytes(jsonType)
				ctx.SetBody(append(b, '\n'))
			default:
				ctx.Error("not found", fasthttp.StatusNotFound)
			}
		},
	}
}
