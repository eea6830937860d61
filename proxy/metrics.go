package proxy

import (
	"sync"
	"sync/atomic"
	"time"
)

// Request counting.
//
// The hot path touches only atomics that were resolved when the routing
// table was built: every route holds one *cell per (pool member, entrypoint)
// it can serve, so counting a request is an index into a slice and a few
// atomic adds, with no label lookup and no allocation. Cells are keyed by
// entrypoint, route, service and backend identity and carried from table to
// table like upstreams are, so counters survive reloads and endpoint
// changes. The Prometheus collector (metrics_collect.go) reads them at
// scrape time.

// latencyBounds are the upper bounds, in seconds, of the request latency
// histogram buckets. Latency is measured until the response header is
// ready: for a streamed body, a long poll or a tunnel, that is the time to
// first byte, not the life of the stream.
var latencyBounds = [...]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// latencyBoundsNanos is latencyBounds in nanoseconds, for the hot path.
var latencyBoundsNanos = func() (ns [len(latencyBounds)]int64) {
	for i, b := range latencyBounds {
		ns[i] = int64(b * 1e9)
	}
	return ns
}()

// statusClassNames label the status classes of cell.status.
var statusClassNames = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

func statusClass(status int) int {
	if status < 100 || status > 599 {
		return 0
	}
	return status / 100
}

// cellKey identifies a cell; upstream is the upstream's key ("" for
// requests answered without a backend).
type cellKey struct {
	entry                    int
	route, service, upstream string
}

// cell counts the requests of one entrypoint, route and backend. Its
// fields are atomics written on the hot path and read at scrape time. A
// cell must not be copied.
type cell struct {
	key cellKey
	// id and addr label the backend; both empty for requests answered by
	// latch itself (no backend available).
	id, addr string

	// hist counts requests by status class and latency bucket (not
	// cumulative; the last bucket is +Inf): one atomic add gives both the
	// status count and the histogram.
	hist     [len(statusClassNames)][len(latencyBounds) + 1]atomic.Uint64
	sumNanos atomic.Int64
	reasons  [len(reasonNames)]atomic.Uint64
	// cookies counts the Set-Cookie values issued: new sticky sessions.
	cookies atomic.Uint64
	// tunnels is the number of open tunnels.
	tunnels atomic.Int64
	// goneSince is when the published table stopped using the cell (unix
	// nanos; 0 while in use). Guarded by metrics.mu.
	goneSince int64
}

// cellRetention is how long a cell outlives its backend or route in the
// table: a service whose source restarts publishes an empty set for a
// moment, and a pod may come back, and neither should reset counters.
const cellRetention = 5 * time.Minute

// openTunnel and closeTunnel count tunnels; nil-safe for servers without
// metrics.
func (c *cell) openTunnel() {
	if c != nil {
		c.tunnels.Add(1)
	}
}

func (c *cell) closeTunnel() {
	if c != nil {
		c.tunnels.Add(-1)
	}
}

// metrics is a Server's counting state. Its methods are safe for
// concurrent use.
type metrics struct {
	// counting is false when Options.DisableMetrics is set: tables get no
	// cells and the hot path returns at its first branch.
	counting bool
	entries  []string // entrypoint names; a decision's entry indexes it
	started  time.Time

	// unrouted counts, per entrypoint, requests that matched no route or
	// came before the first table.
	unrouted []*cell

	mu    sync.Mutex
	cells map[cellKey]*cell // the cells of the published table, and those retained (see cellRetention)

	builds, buildErrors   atomic.Uint64
	reloads, reloadErrors atomic.Uint64
	lastReload            atomic.Int64 // unix seconds of the last successful reload

	recent recentDecisions
}

func newMetrics(entries []string, counting bool) *metrics {
	m := &metrics{counting: counting, entries: entries, started: time.Now(), cells: map[cellKey]*cell{}}
	if counting {
		m.unrouted = make([]*cell, len(entries))
		for i := range entries {
			m.unrouted[i] = &cell{key: cellKey{entry: i}}
		}
	}
	return m
}

// entry returns the index of an entrypoint name. Names are few and the
// handler passes the very string it was built with, so this is a short
// scan of pointer-equal strings.
func (m *metrics) entry(name string) uint16 {
	for i, n := range m.entries {
		if n == name {
			return uint16(i)
		}
	}
	return 0
}

// bind gives every route of t, which is not yet published, its cells:
// existing ones by key, new ones for new routes and backends. Cells that t
// no longer uses are kept for cellRetention, and while a tunnel counts on
// them.
func (m *metrics) bind(t *Table) {
	m.builds.Add(1)
	if !m.counting {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(m.entries)
	live := make(map[cellKey]*cell, len(m.cells))
	get := func(k cellKey, id, addr string) *cell {
		c := live[k]
		if c == nil {
			c = m.cells[k]
		}
		if c == nil {
			c = &cell{key: k, id: id, addr: addr}
		}
		c.goneSince = 0
		live[k] = c
		return c
	}
	for _, r := range t.routes {
		r.cells = make([]*cell, (len(r.pool.members)+1)*n)
		for e, name := range m.entries {
			if len(r.entrypoints) > 0 && !contains(r.entrypoints, name) {
				continue
			}
			r.cells[e] = get(cellKey{e, r.name, r.service, ""}, "", "")
			for i := range r.pool.members {
				mb := &r.pool.members[i]
				r.cells[(i+1)*n+e] = get(cellKey{e, r.name, r.service, mb.up.key}, mb.ep.ID, mb.ep.Addr)
			}
		}
	}
	now := time.Now().UnixNano()
	for k, c := range m.cells {
		if _, ok := live[k]; ok {
			continue
		}
		if c.goneSince == 0 {
			c.goneSince = now
		}
		if now-c.goneSince < int64(cellRetention) || c.tunnels.Load() > 0 {
			live[k] = c
		}
	}
	m.cells = live
}

func contains(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// buildFailed counts a routing table that could not be rebuilt.
func (m *metrics) buildFailed() { m.buildErrors.Add(1) }

// cellOf returns the cell that counts d, or nil when nothing counts it.
func (m *metrics) cellOf(d *decision) *cell {
	if d.route == nil {
		if int(d.entry) < len(m.unrouted) {
			return m.unrouted[d.entry]
		}
		return nil
	}
	cs := d.route.cells
	i := int(d.member+1)*len(m.entries) + int(d.entry)
	if i < 0 || i >= len(cs) {
		return nil
	}
	return cs[i]
}

// observe counts one answered request: its status class, its latency since
// start, and for sticky routes its decision. It allocates nothing.
func (m *metrics) observe(d *decision, status int, start time.Time) {
	if !m.counting {
		return
	}
	c := m.cellOf(d)
	if c == nil {
		return
	}
	elapsed := int64(time.Since(start))
	b := 0
	for b < len(latencyBoundsNanos) && elapsed > latencyBoundsNanos[b] {
		b++
	}
	c.hist[statusClass(status)][b].Add(1)
	c.sumNanos.Add(elapsed)
	if d.route == nil || d.route.sticky == nil {
		return
	}
	n := c.reasons[d.reason].Add(1)
	if d.setCookie && d.member >= 0 {
		c.cookies.Add(1)
	}
	// Every decision that is not a plain hit goes to the recent list, and
	// one hit in 64 per cell (the first included), so a busy route does not
	// turn the list into a contended counter.
	if d.reason != reasonHit || n&63 == 1 {
		var up *upstream
		if d.member >= 0 {
			up = d.upstream()
		}
		m.recent.add(start.UnixNano(), d.route, up, d.reason, status, d.setCookie && d.member >= 0)
	}
}

// requests returns how many requests c counted with status class i.
func (c *cell) requests(i int) uint64 {
	var n uint64
	for b := range c.hist[i] {
		n += c.hist[i][b].Load()
	}
	return n
}

// ObserveReload counts one attempt to reload the configuration (a changed
// --file, for instance): err is nil when it was applied. Safe for
// concurrent use.
func (s *Server) ObserveReload(err error) {
	s.metrics.reloads.Add(1)
	if err != nil {
		s.metrics.reloadErrors.Add(1)
		return
	}
	s.metrics.lastReload.Store(time.Now().Unix())
}

// recentSize is the length of the recent decisions ring.
const recentSize = 64

// recentDecisions is a lock-free ring of the latest sticky decisions,
// written on the hot path without allocating and read by the admin API.
// Every field is an atomic, so readers never race with writers; a slot
// whose seq changed while it was read is skipped. Two writers wrapping onto
// the same slot at once may mix their fields: the ring is a diagnostic
// view, not a record.
type recentDecisions struct {
	n    atomic.Uint64
	ring [recentSize]recentSlot
}

type recentSlot struct {
	seq   atomic.Uint64 // 0 while being written, else the write's number
	at    atomic.Int64  // unix nanos
	route atomic.Pointer[route]
	up    atomic.Pointer[upstream]
	info  atomic.Uint64 // reason | status<<8 | cookie<<24
}

func (r *recentDecisions) add(at int64, rt *route, up *upstream, why reason, status int, cookie bool) {
	seq := r.n.Add(1)
	s := &r.ring[seq%recentSize]
	s.seq.Store(0)
	s.at.Store(at)
	s.route.Store(rt)
	s.up.Store(up)
	info := uint64(why) | uint64(status&0xffff)<<8
	if cookie {
		info |= 1 << 24
	}
	s.info.Store(info)
	s.seq.Store(seq)
}

// DecisionView is one recent sticky decision as the admin API shows it.
type DecisionView struct {
	Time      time.Time `json:"time"`
	Route     string    `json:"route"`
	Service   string    `json:"service"`
	Backend   string    `json:"backend,omitempty"`
	BackendID string    `json:"backend_id,omitempty"`
	Reason    string    `json:"reason"`
	Status    int       `json:"status"`
	SetCookie bool      `json:"set_cookie"`
}

// snapshot returns the decisions in the ring, newest first.
func (r *recentDecisions) snapshot() []DecisionView {
	out := make([]DecisionView, 0, recentSize)
	last := r.n.Load()
	for i := uint64(0); i < recentSize && i < last; i++ {
		want := last - i
		s := &r.ring[want%recentSize]
		if s.seq.Load() != want {
			continue
		}
		at, rt, up, info := s.at.Load(), s.route.Load(), s.up.Load(), s.info.Load()
		if s.seq.Load() != want || rt == nil {
			continue
		}
		v := DecisionView{
			Time: time.Unix(0, at).UTC(), Route: rt.name, Service: rt.service, Reason: "?",
			Status: int(info >> 8 & 0xffff), SetCookie: info&(1<<24) != 0,
		}
		if why := info & 0xff; why < uint64(len(reasonNames)) {
			v.Reason = reason(why).String()
		}
		if up != nil {
			v.Backend, v.BackendID = up.backend.Addr(), up.backend.ID()
		}
		out = append(out, v)
	}
	return out
}
