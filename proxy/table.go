package proxy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/latch-proxy/latch/balancer"
	"github.com/latch-proxy/latch/discovery"
	"github.com/latch-proxy/latch/proxy/config"
	"github.com/latch-proxy/latch/proxy/rules"
)

// Table is one immutable routing snapshot: the routes, their matchers
// indexed per entrypoint, and the backend pools. A published Table is never
// modified; the server swaps in a new one with every change and each
// request Loads exactly one.
type Table struct {
	version uint64
	built   time.Time
	routes  []*route
	byEntry map[string]*rules.Index
	pools   map[string]*pool
	// upstreams holds the live per-backend state by identity, for the next
	// build to carry over.
	upstreams map[string]*upstream
}

// route is one compiled routing rule.
type route struct {
	name        string
	rule        *rules.Rule
	ruleText    string
	priority    int
	entrypoints []string
	service     string
	strategy    string
	origin      string
	pool        *pool
	policy      balancer.Policy
	sticky      *sticky
	strict      bool
	// cells count requests per (member+1)*entrypoints+entry, member -1
	// being "no backend"; set by metrics.bind before the table is
	// published, nil when metrics are off.
	cells []*cell
}

// pool is the backend set of one service in one Table.
type pool struct {
	name string
	// members is every endpoint the source published, sorted by ID.
	members []member
	// ready take new sessions; fallback (serving and terminating) take new
	// sessions only while no endpoint is ready.
	ready, fallback []*balancer.Backend
	byBackend       map[*balancer.Backend]int32
	byToken         map[string]int32
	byDigest        map[[8]byte]int32
	byLegacy        map[string]int32
	published       bool
	// unlisted allows a valid token to name a backend this table does not
	// list yet (Kubernetes pools: another latch replica may have seen a new
	// pod first), subject to unlistedAllowed.
	unlisted bool
	// gone remembers, by identity digest, the backends that left this pool
	// recently (unix nanos of when), so a token for a removed pod moves its
	// client instead of passing for a pod not listed yet.
	gone map[[8]byte]int64
}

// member is one endpoint with its live state.
type member struct {
	ep discovery.Endpoint
	up *upstream
}

// serving reports whether the endpoint may keep existing sessions.
func (m *member) serving() bool { return m.ep.Serving || m.ep.Ready }

// upstream is the live state of one backend: balancing counters, passive
// health and the keep-alive pool. It is created once per identity and
// address and carried from Table to Table, so a config or endpoint change
// never touches a running request or tunnel.
type upstream struct {
	key     string
	addr    netip.AddrPort
	backend *balancer.Backend
	client  *fasthttp.HostClient
	// token is this backend's sticky cookie value, sealed once with the
	// newest key, so that a sticky hit costs one map lookup and no crypto.
	token  string
	legacy [4]string
	// service names the pool the upstream belongs to.
	service string
	// fails counts consecutive connection failures (passive outlier
	// detection); health is the running active check, owned by the
	// controller and touched only under its lock.
	fails  atomic.Int32
	health *healthRun
	// digest is balancer.IdentityDigest of the backend's ID, and cookies
	// its rendered Set-Cookie values per cookie configuration: computed
	// once, reused by every rebuild. Only build touches cookies, and builds
	// run one at a time.
	digest  [8]byte
	cookies map[config.Cookie][2][]byte
}

// buildInput is everything a Table is built from.
type buildInput struct {
	cfg     *config.Config
	sets    map[string]discovery.Set
	keyring *balancer.Keyring
	now     time.Time
	newHost func(addr string) *fasthttp.HostClient
}

// build makes the next Table from prev (which may be nil) and in. It is
// pure apart from creating HostClients for new backends: prev is only read.
func build(prev *Table, in buildInput) (*Table, error) {
	t := &Table{
		built:     in.now,
		byEntry:   map[string]*rules.Index{},
		pools:     map[string]*pool{},
		upstreams: map[string]*upstream{},
	}
	if prev != nil {
		t.version = prev.version + 1
	}
	for _, svc := range in.cfg.Services {
		set, published := in.sets[svc.Name]
		p, err := buildPool(prev, t, svc.Name, set, in)
		if err != nil {
			return nil, err
		}
		p.published = published
		p.unlisted = svc.Kind == config.Kubernetes
		t.pools[svc.Name] = p
	}
	var errs []error
	for _, rc := range in.cfg.Routes {
		r, err := buildRoute(rc, t.pools[rc.Service])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		t.routes = append(t.routes, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	t.index(in.cfg.Entrypoints)
	return t, nil
}

// index builds one rules.Index per entrypoint over the routes that listen
// on it.
func (t *Table) index(eps []config.Entrypoint) {
	for _, ep := range eps {
		var entries []rules.Entry
		for i, r := range t.routes {
			if len(r.entrypoints) == 0 || slices.Contains(r.entrypoints, ep.Name) {
				entries = append(entries, rules.Entry{Rule: r.rule, Priority: r.priority, ID: i})
			}
		}
		t.byEntry[ep.Name] = rules.NewIndex(entries)
	}
}

func buildRoute(rc config.Route, p *pool) (*route, error) {
	if p == nil {
		return nil, fmt.Errorf("route %q: unknown service %q", rc.Name, rc.Service)
	}
	rule, err := rules.Parse(rc.Rule)
	if err != nil {
		return nil, fmt.Errorf("route %q: %w", rc.Name, err)
	}
	policy, err := balancer.NewPolicy(rc.Strategy)
	if err != nil {
		return nil, fmt.Errorf("route %q: %w", rc.Name, err)
	}
	prio := rc.Priority
	if prio == 0 {
		prio = rules.DefaultPriority(rc.Rule)
	}
	r := &route{
		name:        rc.Name,
		rule:        rule,
		ruleText:    rc.Rule,
		priority:    prio,
		entrypoints: rc.Entrypoints,
		service:     rc.Service,
		strategy:    rc.Strategy,
		origin:      rc.Origin,
		pool:        p,
		policy:      policy,
		strict:      rc.Strict,
	}
	if r.strategy == "" {
		r.strategy = "leastconn"
	}
	if rc.Sticky != nil {
		r.sticky = newSticky(*rc.Sticky, p)
	}
	return r, nil
}

func buildPool(prev, t *Table, name string, set discovery.Set, in buildInput) (*pool, error) {
	p := &pool{
		name:      name,
		members:   make([]member, 0, len(set)),
		byBackend: make(map[*balancer.Backend]int32, len(set)),
		byToken:   make(map[string]int32, len(set)),
		byDigest:  make(map[[8]byte]int32, len(set)),
		byLegacy:  make(map[string]int32, 3*len(set)),
	}
	for _, ep := range set {
		addr, err := netip.ParseAddrPort(ep.Addr)
		if err != nil {
			return nil, fmt.Errorf("service %q: endpoint %q: %w", name, ep.Addr, err)
		}
		key := name + "\x00" + ep.ID + "\x00" + ep.Addr
		up := t.upstreams[key]
		if up == nil && prev != nil {
			up = prev.upstreams[key]
		}
		if up == nil {
			up = newUpstream(key, ep, addr, in)
		}
		t.upstreams[key] = up
		i := int32(len(p.members))
		p.members = append(p.members, member{ep: ep, up: up})
		p.byBackend[up.backend] = i
		p.byToken[up.token] = i
		p.byDigest[up.digest] = i
		for _, v := range up.legacy {
			if v != "" {
				p.byLegacy[v] = i
			}
		}
		switch {
		case ep.Ready:
			p.ready = append(p.ready, up.backend)
		case ep.Serving:
			p.fallback = append(p.fallback, up.backend)
		}
	}
	p.gone = goneFrom(prev, name, p, in.now.UnixNano())
	return p, nil
}

func newUpstream(key string, ep discovery.Endpoint, addr netip.AddrPort, in buildInput) *upstream {
	return &upstream{
		key:     key,
		service: serviceOf(key),
		addr:    addr,
		backend: balancer.NewBackend(ep.ID, ep.Addr),
		client:  in.newHost(ep.Addr),
		token:   in.keyring.Seal(ep.ID, addr, in.now.Unix()),
		digest:  balancer.IdentityDigest(ep.ID),
		legacy:  balancer.TraefikCookieValues(addr),
	}
}

// candidates returns the backends that may take a new session.
func (p *pool) candidates() []*balancer.Backend {
	if len(p.ready) > 0 {
		return p.ready
	}
	return p.fallback
}

// retired lists the upstreams of prev that next no longer has, so their
// idle connections can be closed once next is published.
func retired(prev, next *Table) []*upstream {
	if prev == nil {
		return nil
	}
	var out []*upstream
	for k, up := range prev.upstreams {
		if _, ok := next.upstreams[k]; !ok {
			out = append(out, up)
		}
	}
	return out
}

// Compile checks cfg as the server would run it, without discovery: rules
// parse, strategies exist, routes name services. The returned Table has
// empty pools and serves only to describe the routes.
func Compile(cfg *config.Config) (*Table, error) {
	return build(nil, buildInput{
		cfg:     cfg,
		keyring: balancer.BuiltinKeyring(),
		now:     time.Now(),
		newHost: func(addr string) *fasthttp.HostClient { return &fasthttp.HostClient{Addr: addr} },
	})
}

// serviceOf extracts the service name from an upstream key.
func serviceOf(key string) string {
	name, _, _ := strings.Cut(key, "\x00")
	return name
}

// goneFor is how long a removed backend's identity is remembered.
const goneFor = 15 * time.Minute

// goneFrom carries the previous pool's removed identities forward, adds
// the members that just left, and forgets what is older than goneFor or
// listed again.
func goneFrom(prev *Table, name string, p *pool, now int64) map[[8]byte]int64 {
	if prev == nil || prev.pools[name] == nil {
		return nil
	}
	old := prev.pools[name]
	gone := make(map[[8]byte]int64, len(old.gone))
	for d, at := range old.gone {
		if now-at < int64(goneFor) {
			gone[d] = at
		}
	}
	for d := range old.byDigest {
		gone[d] = now
	}
	for d := range p.byDigest {
		delete(gone, d)
	}
	return gone
}
