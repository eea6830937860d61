package proxy

import (
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// The metrics latch exports, all read at scrape time from the atomics the
// hot path writes and from the routing table in use.
var (
	descRequests = prometheus.NewDesc("latch_requests_total",
		"Requests answered, by entrypoint, route, service, backend (empty when latch answered itself) and status class.",
		[]string{"entrypoint", "route", "service", "backend", "code"}, nil)
	descDuration = prometheus.NewDesc("latch_request_duration_seconds",
		"Time until the response header was ready (for streams, long polls and tunnels: time to first byte), by route.",
		[]string{"route", "service"}, nil)
	descSticky = prometheus.NewDesc("latch_sticky_decisions_total",
		"Sticky decisions on routes with a cookie, by reason code (hit, new, unknown, expired, bad-mac, backend-gone, draining-hold, traefik-upgraded, sid).",
		[]string{"route", "service", "backend", "reason"}, nil)
	descCookies = prometheus.NewDesc("latch_sticky_cookies_issued_total",
		"Sticky cookies set (new sessions, moved sessions and rewritten cookies), by backend.",
		[]string{"route", "service", "backend"}, nil)
	descTunnels = prometheus.NewDesc("latch_backend_tunnels",
		"Open WebSocket (Upgrade) tunnels per backend.",
		[]string{"service", "backend"}, nil)
	descInflight = prometheus.NewDesc("latch_backend_inflight_requests",
		"Requests in flight per backend, tunnels not included.",
		[]string{"service", "backend"}, nil)
	descState = prometheus.NewDesc("latch_backend_state",
		"1 for the backend's current state: ready (takes new sessions), draining (terminating but serving: keeps its sessions), down (not serving, or refused a connection recently).",
		[]string{"service", "backend", "id", "state"}, nil)
	descEndpoints = prometheus.NewDesc("latch_service_endpoints",
		"Endpoints per service and state.",
		[]string{"service", "state"}, nil)
	descTunnelsOpen = prometheus.NewDesc("latch_tunnels_open",
		"Open tunnels in total.", nil, nil)
	descReloads = prometheus.NewDesc("latch_config_reloads_total",
		"Attempts to reload the configuration after a change of --file.", nil, nil)
	descReloadErrors = prometheus.NewDesc("latch_config_reload_errors_total",
		"Reloads rejected (the running configuration stayed).", nil, nil)
	descLastReload = prometheus.NewDesc("latch_config_last_reload_success_timestamp_seconds",
		"When the configuration was last reloaded successfully (0: never).", nil, nil)
	descBuilds = prometheus.NewDesc("latch_table_builds_total",
		"Routing tables published (configuration and endpoint changes).", nil, nil)
	descBuildErrors = prometheus.NewDesc("latch_table_build_errors_total",
		"Routing table rebuilds that failed (the previous table stayed).", nil, nil)
	descTableVersion = prometheus.NewDesc("latch_table_version",
		"Version of the routing table in use.", nil, nil)
	descBuildInfo = prometheus.NewDesc("latch_build_info",
		"Build information; always 1.", []string{"version", "revision", "goversion"}, nil)
	descStarted = prometheus.NewDesc("latch_start_time_seconds",
		"When the server was created, in unix seconds.", nil, nil)
)

// backendStates label latch_backend_state and latch_service_endpoints.
var backendStates = [...]string{"ready", "draining", "down"}

// memberState is the state a member shows to operators at now.
func memberState(m *member, now int64) string {
	switch {
	case !m.serving() || !m.up.backend.Up(now):
		return "down"
	case m.ep.Ready:
		return "ready"
	default:
		return "draining"
	}
}

// collector exports a Server's metrics.
type collector struct{ s *Server }

var _ prometheus.Collector = collector{}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descDuration, descSticky, descCookies, descTunnels,
		descInflight, descState, descEndpoints, descTunnelsOpen, descReloads, descReloadErrors, descLastReload,
		descBuilds, descBuildErrors, descTableVersion, descBuildInfo, descStarted} {
		ch <- d
	}
}

// Collect aggregates the cells by label set (a backend may count under two
// identities at once while a pod is replaced at the same address).
func (c collector) Collect(ch chan<- prometheus.Metric) {
	m := c.s.metrics
	type reqKey struct{ entry, route, service, backend, code string }
	type routeKey struct{ route, service string }
	type stickyKey struct{ route, service, backend, reason string }
	type backendKey struct{ route, service, backend string }
	type histo struct {
		count, sumNanos uint64
		buckets         [len(latencyBounds) + 1]uint64
	}
	reqs := map[reqKey]uint64{}
	hist := map[routeKey]*histo{}
	sticky := map[stickyKey]uint64{}
	cookies := map[backendKey]uint64{}
	tunnelsByUp := map[string]int64{}

	cells := m.snapshotCells()
	for _, cl := range cells {
		k := cl.key
		entry := ""
		if k.entry < len(m.entries) {
			entry = m.entries[k.entry]
		}
		for i := range cl.hist {
			if v := cl.requests(i); v > 0 {
				reqs[reqKey{entry, k.route, k.service, cl.addr, statusClassNames[i]}] += v
			}
		}
		h := hist[routeKey{k.route, k.service}]
		if h == nil {
			h = &histo{}
			hist[routeKey{k.route, k.service}] = h
		}
		for i := range cl.hist {
			for b := range cl.hist[i] {
				v := cl.hist[i][b].Load()
				h.buckets[b] += v
				h.count += v
			}
		}
		h.sumNanos += uint64(cl.sumNanos.Load())
		for i := range cl.reasons {
			if v := cl.reasons[i].Load(); v > 0 && reason(i) != reasonNone {
				sticky[stickyKey{k.route, k.service, cl.addr, reason(i).String()}] += v
			}
		}
		if v := cl.cookies.Load(); v > 0 {
			cookies[backendKey{k.route, k.service, cl.addr}] += v
		}
		tunnelsByUp[k.upstream] += cl.tunnels.Load()
	}
	for k, v := range reqs {
		ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(v), k.entry, k.route, k.service, k.backend, k.code)
	}
	for k, h := range hist {
		if h.count == 0 && k.route == "" {
			continue
		}
		buckets := make(map[float64]uint64, len(latencyBounds))
		var cum uint64
		for i, b := range latencyBounds {
			cum += h.buckets[i]
			buckets[b] = cum
		}
		ch <- prometheus.MustNewConstHistogram(descDuration, h.count, float64(h.sumNanos)/1e9, buckets, k.route, k.service)
	}
	for k, v := range sticky {
		ch <- prometheus.MustNewConstMetric(descSticky, prometheus.CounterValue, float64(v), k.route, k.service, k.backend, k.reason)
	}
	for k, v := range cookies {
		ch <- prometheus.MustNewConstMetric(descCookies, prometheus.CounterValue, float64(v), k.route, k.service, k.backend)
	}

	if t := c.s.table.Load(); t != nil {
		now := time.Now().UnixNano()
		type svcBackend struct{ service, backend string }
		type stateKey struct{ service, backend, id, state string }
		tunnels := map[svcBackend]int64{}
		inflight := map[svcBackend]int64{}
		states := map[stateKey]float64{}
		for name, p := range t.pools {
			counts := map[string]int{}
			for i := range p.members {
				mb := &p.members[i]
				k := svcBackend{name, mb.ep.Addr}
				tn := tunnelsByUp[mb.up.key]
				tunnels[k] += tn
				inflight[k] += max(mb.up.backend.Load()-tn, 0)
				st := memberState(mb, now)
				counts[st]++
				for _, s := range backendStates {
					sk := stateKey{name, mb.ep.Addr, mb.ep.ID, s}
					if s == st {
						states[sk] = 1
					} else if _, ok := states[sk]; !ok {
						states[sk] = 0
					}
				}
			}
			for _, s := range backendStates {
				ch <- prometheus.MustNewConstMetric(descEndpoints, prometheus.GaugeValue, float64(counts[s]), name, s)
			}
		}
		for k, v := range tunnels {
			ch <- prometheus.MustNewConstMetric(descTunnels, prometheus.GaugeValue, float64(v), k.service, k.backend)
		}
		for k, v := range inflight {
			ch <- prometheus.MustNewConstMetric(descInflight, prometheus.GaugeValue, float64(v), k.service, k.backend)
		}
		for k, v := range states {
			ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, v, k.service, k.backend, k.id, k.state)
		}
		ch <- prometheus.MustNewConstMetric(descTableVersion, prometheus.GaugeValue, float64(t.version))
	}
	ch <- prometheus.MustNewConstMetric(descTunnelsOpen, prometheus.GaugeValue, float64(c.s.tunnels.count()))
	ch <- prometheus.MustNewConstMetric(descReloads, prometheus.CounterValue, float64(m.reloads.Load()))
	ch <- prometheus.MustNewConstMetric(descReloadErrors, prometheus.CounterValue, float64(m.reloadErrors.Load()))
	ch <- prometheus.MustNewConstMetric(descLastReload, prometheus.GaugeValue, float64(m.lastReload.Load()))
	ch <- prometheus.MustNewConstMetric(descBuilds, prometheus.CounterValue, float64(m.builds.Load()))
	ch <- prometheus.MustNewConstMetric(descBuildErrors, prometheus.CounterValue, float64(m.buildErrors.Load()))
	bi := readBuildInfo()
	ch <- prometheus.MustNewConstMetric(descBuildInfo, prometheus.GaugeValue, 1, bi.Version, bi.Revision, bi.GoVersion)
	ch <- prometheus.MustNewConstMetric(descStarted, prometheus.GaugeValue, float64(m.started.Unix()))
}

// snapshotCells returns the live cells and the unrouted ones.
func (m *metrics) snapshotCells() []*cell {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*cell, 0, len(m.cells)+len(m.unrouted))
	for _, c := range m.cells {
		out = append(out, c)
	}
	return append(out, m.unrouted...)
}

// newRegistry returns a registry with latch's collector and the Go runtime
// and process collectors. Each Server has its own: there is no global one.
func (s *Server) newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{s},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// VersionView is what /api/version shows.
type VersionView struct {
	Version   string    `json:"version"`
	Revision  string    `json:"revision"`
	Modified  bool      `json:"modified,omitempty"`
	GoVersion string    `json:"go_version"`
	Started   time.Time `json:"started"`
	Table     uint64    `json:"table_version"`
}

// readBuildInfo reads the version from the binary's build information.
func readBuildInfo() VersionView {
	v := VersionView{Version: "(devel)", Revision: "unknown"}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	v.GoVersion = bi.GoVersion
	for _, st := range bi.Settings {
		switch st.Key {
		case "vcs.revision":
			v.Revision = st.Value
		case "vcs.modified":
			v.Modified = st.Value == "true"
		}
	}
	return v
}
