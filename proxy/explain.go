package proxy

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/latch-proxy/latch/balancer"
	"github.com/latch-proxy/latch/proxy/rules"
)

// ExplainQuery is a request to explain: what a client would send. The
// admin API reads it from /api/explain?entrypoint=&method=&host=&path=
// &cookie=&ip=&header=NAME:VALUE (header repeatable).
type ExplainQuery struct {
	Entrypoint string // empty: the first by name
	Method     string // empty: GET
	Host       string
	Path       string // may carry ?query
	// Cookie is either a whole Cookie header ("a=b; heyy=TOKEN") or the
	// value of the matched route's sticky cookie alone.
	Cookie   string
	ClientIP netip.Addr // the zero Addr when unknown
	Headers  map[string]string
}

// Explanation says what latch would do with a request, and why. It reads
// the live table and backend state and changes nothing.
type Explanation struct {
	Entrypoint string `json:"entrypoint"`
	Method     string `json:"method"`
	Host       string `json:"host"`
	Path       string `json:"path"`

	Matched bool `json:"matched"`
	// Route is the route that serves the request; Why says why it won.
	Route *RouteRef `json:"route,omitempty"`
	Why   string    `json:"why"`
	// AlsoMatching lists the lower-ranked routes whose rules match too.
	AlsoMatching []RouteRef `json:"also_matching,omitempty"`

	Cookie   *CookieExplanation `json:"cookie,omitempty"`
	Decision DecisionExplained  `json:"decision"`
}

// RouteRef names a route.
type RouteRef struct {
	Name     string `json:"name"`
	Rule     string `json:"rule"`
	Priority int    `json:"priority"`
	Service  string `json:"service"`
	Cookie   string `json:"cookie,omitempty"`
	Strict   bool   `json:"strict,omitempty"`
}

// CookieExplanation is what the route's sticky cookie decodes to.
type CookieExplanation struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	// Format is "latch" (a token latch can open), "latch-unverified" (the
	// shape of a token, but it does not open), "traefik" (a value Traefik
	// wrote for one of the backends) or "unknown".
	Format  string `json:"format"`
	Traefik string `json:"traefik,omitempty"` // which Traefik versions wrote it
	Valid   bool   `json:"valid"`
	Error   string `json:"error,omitempty"`
	// Token fields: the key id as written in the token (hex), the index
	// of the key that opened it (0 is the newest; above 0 latch re-signs).
	KeyID      string `json:"key_id,omitempty"`
	KeyIndex   *int   `json:"key_index,omitempty"`
	Version    int    `json:"version,omitempty"`
	Issued     string `json:"issued,omitempty"`
	AgeSeconds *int64 `json:"age_seconds,omitempty"`
	MaxAge     int64  `json:"max_age_seconds,omitempty"`
	Expired    bool   `json:"expired,omitempty"`
	// Backend is the pool member the cookie names, when it is in the pool;
	// SealedAddr the address sealed in the token.
	Backend    *BackendRef `json:"backend,omitempty"`
	SealedAddr string      `json:"sealed_addr,omitempty"`
}

// BackendRef names a backend with its current state.
type BackendRef struct {
	ID    string `json:"id"`
	Addr  string `json:"addr"`
	State string `json:"state"`
}

// DecisionExplained is what latch would do.
type DecisionExplained struct {
	// Reason is the sticky reason code ("-" on routes without a cookie).
	Reason string `json:"reason"`
	// Action is one sentence: where the request goes or what latch answers.
	Action string `json:"action"`
	// Backend is where the request goes, when that is known without a
	// balancing pick; Candidates are the backends a pick chooses among.
	Backend    *BackendRef  `json:"backend,omitempty"`
	Candidates []BackendRef `json:"candidates,omitempty"`
	Strategy   string       `json:"strategy,omitempty"`
	SetCookie  bool         `json:"set_cookie"`
	// Status is the status latch itself answers with (404, 503), 0 when the
	// request goes to a backend.
	Status int `json:"status,omitempty"`
}

// Explain says what the table would do with q at now, using kr for
// cookies. It does not pick a balancing target (that would move a
// round-robin cursor) and changes no state.
func (t *Table) Explain(q ExplainQuery, kr *balancer.Keyring, now time.Time) Explanation {
	if q.Method == "" {
		q.Method = "GET"
	}
	if q.Path == "" {
		q.Path = "/"
	}
	if q.Entrypoint == "" {
		for name := range t.byEntry {
			if q.Entrypoint == "" || name < q.Entrypoint {
				q.Entrypoint = name
			}
		}
	}
	e := Explanation{Entrypoint: q.Entrypoint, Method: q.Method, Host: q.Host, Path: q.Path, Decision: DecisionExplained{Reason: reasonNone.String()}}
	ix := t.byEntry[q.Entrypoint]
	if ix == nil {
		e.Why = fmt.Sprintf("there is no entrypoint %q", q.Entrypoint)
		e.Decision.Action, e.Decision.Status = "nothing listens there", 0
		return e
	}
	req := newExplainRequest(q)
	id, ok := ix.Match(req)
	if !ok {
		e.Why = fmt.Sprintf("no rule of the %d routes on entrypoint %s matches", ix.Len(), q.Entrypoint)
		e.Decision.Action, e.Decision.Status = "answer 404 (no route)", 404
		return e
	}
	r := t.routes[id]
	e.Matched, e.Route = true, routeRef(r)
	var also []RouteRef
	for i, o := range t.routes {
		if i != id && o.rule.Match(req) && (len(o.entrypoints) == 0 || contains(o.entrypoints, q.Entrypoint)) {
			also = append(also, *routeRef(o))
		}
	}
	e.AlsoMatching = also
	e.Why = fmt.Sprintf("rule %s matches, priority %d", r.ruleText, r.priority)
	if len(also) > 0 {
		e.Why += fmt.Sprintf("; it outranks %d other matching route(s): higher priority wins, then the longer rule", len(also))
	}

	nowNanos := now.UnixNano()
	d := &e.Decision
	d.Strategy = r.strategy
	var value []byte
	if r.sticky != nil {
		v := cookieFrom(q.Cookie, r.sticky.name)
		value = []byte(v)
		e.Cookie = explainCookie(r, kr, v, now)
		member, why, rewrite := r.sticky.lookup(r.pool, kr, value, nowNanos)
		d.Reason = why.String()
		if member >= 0 {
			mb := &r.pool.members[member]
			d.Backend = backendRef(mb, nowNanos)
			d.SetCookie = rewrite
			d.Action = fmt.Sprintf("send to %s (%s), the backend the cookie names", mb.ep.Addr, why)
			if rewrite {
				d.Action += ", and rewrite the cookie to a fresh latch token"
			}
			return e
		}
		if r.strict && why == reasonBackendGone {
			d.Action, d.Status = "answer 503: the sticky backend is gone and the route is strict", 503
			return e
		}
		d.SetCookie = true
	}
	for _, b := range r.pool.candidates() {
		if !b.Up(nowNanos) {
			continue
		}
		mb := &r.pool.members[r.pool.byBackend[b]]
		d.Candidates = append(d.Candidates, *backendRef(mb, nowNanos))
	}
	if len(d.Candidates) == 0 {
		d.Action, d.Status, d.SetCookie = "answer 503: no backend available", 503, false
		return e
	}
	d.Action = fmt.Sprintf("pick a backend with %s among %d candidate(s)", r.strategy, len(d.Candidates))
	if r.sticky != nil {
		d.Action += " and set a new sticky cookie"
	}
	return e
}

func routeRef(r *route) *RouteRef {
	ref := &RouteRef{Name: r.name, Rule: r.ruleText, Priority: r.priority, Service: r.service, Strict: r.strict}
	if r.sticky != nil {
		ref.Cookie = r.sticky.name
	}
	return ref
}

func backendRef(m *member, now int64) *BackendRef {
	return &BackendRef{ID: m.ep.ID, Addr: m.ep.Addr, State: memberState(m, now)}
}

// cookieFrom returns the value of cookie name in a Cookie header, or v
// itself when v holds no '=' (a bare value).
func cookieFrom(v, name string) string {
	if !strings.Contains(v, "=") {
		return strings.TrimSpace(v)
	}
	for part := range strings.SplitSeq(v, ";") {
		k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		if k == name {
			return val
		}
	}
	return ""
}

// explainCookie decodes a sticky cookie value for r; nil when there is
// none.
func explainCookie(r *route, kr *balancer.Keyring, v string, now time.Time) *CookieExplanation {
	if v == "" {
		return nil
	}
	c := &CookieExplanation{Name: r.sticky.name, Value: v, Format: "unknown", MaxAge: r.sticky.maxAge}
	nowNanos := now.UnixNano()
	p := r.pool
	if i, ok := p.byLegacy[v]; ok {
		mb := &p.members[i]
		c.Format, c.Valid, c.Backend = "traefik", true, backendRef(mb, nowNanos)
		names := [...]string{"v1.x to v2.4 (raw URL)", "v2.5 to v2.11 (FNV-1a 64)", "v3.0 to v3.3.3 (double FNV)", "v3.3.4 and later (SHA-256)"}
		for k, lv := range mb.up.legacy {
			if lv == v {
				c.Traefik = names[k]
			}
		}
		return c
	}
	if len(v) >= 4 {
		// DecodeString skips newlines, so four characters may yield fewer
		// than the two header bytes.
		if hdr, err := base64.RawURLEncoding.DecodeString(v[:4]); err == nil && len(hdr) >= 2 {
			c.Version, c.KeyID = int(hdr[0]), fmt.Sprintf("%02x", hdr[1])
		}
	}
	claims, err := kr.Open([]byte(v))
	switch {
	case errors.Is(err, balancer.ErrBadMAC):
		c.Format, c.Error = "latch-unverified", "forged or altered: a key with this id exists but the token does not authenticate"
		return c
	case errors.Is(err, balancer.ErrUnknownKey):
		c.Format, c.Error = "latch-unverified", "no loaded key has this id: signed with a retired key, or by another installation"
		return c
	case errors.Is(err, balancer.ErrVersion):
		c.Format, c.Error = "latch-unverified", "a token version this build does not read"
		return c
	case err != nil:
		c.KeyID, c.Version = "", 0
		c.Error = "neither a latch token nor a Traefik value for a backend of this service"
		return c
	}
	c.Format, c.Valid = "latch", true
	ki := claims.KeyIndex
	c.KeyIndex = &ki
	c.Version = int(claims.Version)
	c.Issued = time.Unix(claims.Issued, 0).UTC().Format(time.RFC3339)
	age := now.Unix() - claims.Issued
	c.AgeSeconds = &age
	c.Expired = r.sticky.maxAge > 0 && age > r.sticky.maxAge
	if claims.Addr.IsValid() {
		c.SealedAddr = claims.Addr.String()
	}
	if i, ok := p.byDigest[claims.IDDigest]; ok {
		c.Backend = backendRef(&p.members[i], nowNanos)
	}
	return c
}

// explainRequest is a rules.Request built from an ExplainQuery.
type explainRequest struct {
	method, host, path []byte
	query              url.Values
	headers            map[string][]byte // by lowercase name
	ip                 netip.Addr
}

var _ rules.Request = (*explainRequest)(nil)

func newExplainRequest(q ExplainQuery) *explainRequest {
	path, rawQuery, _ := strings.Cut(q.Path, "?")
	if p, err := url.PathUnescape(path); err == nil {
		path = p
	}
	query, _ := url.ParseQuery(rawQuery)
	r := &explainRequest{method: []byte(q.Method), host: []byte(q.Host), path: []byte(path),
		query: query, headers: map[string][]byte{}, ip: q.ClientIP}
	for k, v := range q.Headers {
		r.headers[strings.ToLower(k)] = []byte(v)
	}
	if q.Cookie != "" {
		r.headers["cookie"] = []byte(q.Cookie)
	}
	r.headers["host"] = r.host
	return r
}

func (r *explainRequest) Host() []byte   { return r.host }
func (r *explainRequest) Path() []byte   { return r.path }
func (r *explainRequest) Method() []byte { return r.method }
func (r *explainRequest) Header(name []byte) []byte {
	return r.headers[strings.ToLower(string(name))]
}
func (r *explainRequest) ClientIP() netip.Addr { return r.ip }
func (r *explainRequest) Query(name []byte) ([]byte, bool) {
	vs, ok := r.query[string(name)]
	if !ok {
		return nil, false
	}
	if len(vs) == 0 {
		return []byte{}, true
	}
	return []byte(vs[0]), true
}
