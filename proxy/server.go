// Package proxy is latch's HTTP side: listeners, the immutable routing
// table, sticky decisions, forwarding and WebSocket tunnels. It is the only
// package that imports fasthttp.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/latch-proxy/latch/balancer"
	"github.com/latch-proxy/latch/proxy/config"
)

// Options configure a Server. Zero values take the documented defaults.
type Options struct {
	// Admin is the admin listener address; empty disables it.
	Admin string
	// Keyring seals and opens sticky tokens; nil uses the built-in key.
	Keyring *balancer.Keyring
	// TrustedProxies may set X-Forwarded-* headers that latch keeps.
	TrustedProxies []netip.Prefix
	// TunnelIdleTimeout closes a WebSocket tunnel after this long without a
	// byte in either direction (default 60 s, above Socket.IO's ping window).
	TunnelIdleTimeout time.Duration
	// TunnelGoroutines runs every tunnel on two goroutines of its own
	// instead of the epoll engine (which holds an idle tunnel in a few
	// hundred bytes). The engine never runs TLS client connections.
	TunnelGoroutines bool
	// HTTPGoroutines serves plain-HTTP entrypoints with fasthttp's
	// goroutine per connection, as TLS entrypoints always are, instead of
	// the epoll event loops (lane), which serve common requests for less
	// CPU and hand the rest to fasthttp.
	HTTPGoroutines bool
	// DialTimeout bounds connecting to a backend (default 3 s).
	DialTimeout time.Duration
	// DownFor is how long a backend that refused a connection gets no new
	// requests (default 5 s).
	DownFor time.Duration
	// MaxConnsPerBackend caps keep-alive connections to one backend
	// (default 16384: long polls hold one each).
	MaxConnsPerBackend int
	// ShutdownGrace bounds how long Run waits for requests to finish after
	// its context ends, before it closes tunnels (default 10 s).
	ShutdownGrace time.Duration
	// ShutdownDelay keeps serving this long after the context ends, with
	// /ping answering 503, so load balancers stop sending first (default 0).
	ShutdownDelay time.Duration
	// DrainWindow spreads the closing of tunnels at shutdown over this
	// long, so clients reconnect elsewhere gradually (default 0: at once).
	DrainWindow time.Duration
	// Limits bound connections, bodies, timeouts and backend queues.
	Limits Limits
	// TLS lists the certificates of each TLS entrypoint by name; the one
	// served is chosen by SNI. Files are re-read every CertPoll (default
	// 5 s) and swapped in when they change. An entrypoint listed without
	// files serves TLS with certificates from cluster Secrets alone (see
	// SetSecretCerts).
	TLS      map[string][]CertFiles
	CertPoll time.Duration
	// HealthChecks are the active checks of services, by service name.
	HealthChecks map[string]config.HealthCheck
	// RedirectHTTPS maps an entrypoint to the TLS entrypoint its requests
	// are redirected to with 308.
	RedirectHTTPS map[string]string
	// AccessLog receives one line per request; nil disables it. When it
	// has a Reopen() error method (a *LogFile), ReopenAccessLog calls it.
	AccessLog io.Writer
	// AccessLogFormat is "text" (common log format plus route, service,
	// backend, duration and sticky reason; the default) or "json".
	AccessLogFormat string
	// AdminToken, when set, must be presented as "Authorization: Bearer
	// TOKEN" for everything on the admin listener but /ping and the
	// dashboard's static files.
	AdminToken string
	// Pprof serves net/http/pprof under /debug/pprof/ on the admin listener.
	Pprof bool
	// DisableMetrics turns off per-request counting (for benchmarks);
	// /metrics then shows only state read at scrape time.
	DisableMetrics bool
	// Log receives operational messages; nil discards them.
	Log *slog.Logger
	// Sources makes discovery sources for services; nil supports only
	// static and DNS services.
	Sources SourceFactory
	// ACME gets one TLS entrypoint's certificates from an ACME CA; the
	// zero value turns it off.
	ACME ACME
}

func (o *Options) defaults() {
	o.Limits.defaults()
	if o.CertPoll <= 0 {
		o.CertPoll = 5 * time.Second
	}
	if o.Keyring == nil {
		o.Keyring = balancer.BuiltinKeyring()
	}
	if o.TunnelIdleTimeout <= 0 {
		o.TunnelIdleTimeout = 60 * time.Second
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 3 * time.Second
	}
	if o.DownFor <= 0 {
		o.DownFor = 5 * time.Second
	}
	if o.MaxConnsPerBackend <= 0 {
		o.MaxConnsPerBackend = 16384
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Sources == nil {
		o.Sources = DefaultSources(o.Log)
	}
}

// readBufferSize caps request headers in fasthttp: 16 KiB of headers must
// fit, with room for the request line.
const readBufferSize = 20 << 10

// Server is the proxy: one fasthttp server per entrypoint sharing one
// routing table, plus the admin listener. Create it with New, configure it
// with Apply, run it with Run.
type Server struct {
	opts    Options
	log     *slog.Logger
	table   atomic.Pointer[Table]
	ctrl    *controller
	tunnels *tunnels
	access  *accessLog
	metrics *metrics
	dialer  net.Dialer
	streams sync.Pool            // *bodyStream
	engine  *engine              // runs plain-TCP tunnels; nil: goroutines run them all
	lane    atomic.Pointer[lane] // serves plain-HTTP entrypoints; nil: fasthttp serves them all
	bufs    upgradeBufs
	limits  sync.Pool // *bodyLimit

	entrypoints []config.Entrypoint
	redirects   map[string]string // entrypoint -> ":PORT" of its https target
	unlisted    *unlistedBackends
	sids        sidTable // Engine.IO sessions by sid, for clients without cookies
	ready       atomic.Bool
	holds       atomic.Int32
	acme        *acmeIssuer // nil without ACME
	secretCerts secretCerts // by TLS entrypoint; fixed by New
	sweep       *sweep      // keeps the read deadlines of clients' and backends' connections
}

// Hold keeps /ping from answering 200 until the returned release is
// called, for inputs that must arrive before latch may take traffic (the
// first list of cluster route objects). Release is idempotent.
func (s *Server) Hold() (release func()) {
	s.holds.Add(1)
	var once sync.Once
	return func() { once.Do(func() { s.holds.Add(-1) }) }
}

// Ready reports whether latch is listening, has a table whose services
// have all reported, and is held by nothing.
func (s *Server) Ready() bool {
	t := s.table.Load()
	return s.ready.Load() && s.holds.Load() == 0 && t != nil && t.Ready()
}

// New returns a Server for the given entrypoints. It listens on nothing
// until Run.
func New(entrypoints []config.Entrypoint, opts Options) *Server {
	opts.defaults()
	s := &Server{
		opts:        opts,
		log:         opts.Log,
		tunnels:     newTunnels(),
		access:      newAccessLog(opts.AccessLog, opts.AccessLogFormat),
		entrypoints: entrypoints,
		redirects:   redirectPorts(entrypoints, opts.RedirectHTTPS),
		secretCerts: newSecretCerts(opts.TLS),
		dialer:      net.Dialer{Timeout: opts.DialTimeout, KeepAliveConfig: keepAlive(backendKeepIdle)},
		sweep: newSweep(opts.Limits.ReadTimeout, opts.Limits.IdleTimeout, opts.Limits.UpstreamTimeout,
			opts.TunnelIdleTimeout),
	}
	names := make([]string, len(entrypoints))
	for i, ep := range entrypoints {
		names[i] = ep.Name
	}
	s.metrics = newMetrics(names, !opts.DisableMetrics)
	s.ctrl = newController(s)
	s.acme = newACMEIssuer(opts.ACME, s.Table, s.log)
	s.unlisted = &unlistedBackends{newUpstream: func(addr netip.AddrPort) *upstream {
		a := addr.String()
		return &upstream{key: "unlisted\x00" + a, addr: addr, service: "unlisted",
			backend: balancer.NewBackend("unlisted:"+a, a), client: s.newHostClient(a)}
	}}
	return s
}

// Apply makes cfg the running configuration: it starts discovery for new
// services, stops it for removed ones and swaps in a new routing table.
// Open tunnels and in-flight requests are never touched. An error leaves
// the previous configuration running. Safe for concurrent use.
func (s *Server) Apply(cfg *config.Config) error { return s.ctrl.apply(cfg) }

// Table returns the routing table in use, or nil before the first Apply.
func (s *Server) Table() *Table { return s.table.Load() }

// Run listens on every entrypoint and the admin address until ctx ends,
// then shuts down in order: stop accepting, let requests finish (up to
// ShutdownGrace), close tunnels, stop discovery.
func (s *Server) Run(ctx context.Context) error {
	type listener struct {
		srv *fasthttp.Server
		ln  net.Listener
	}
	var ls []listener
	closeAll := func() {
		for _, l := range ls {
			l.ln.Close()
		}
	}
	if n, err := growFDTable(); err != nil {
		s.log.Warn("descriptor table not grown in advance", "err", err)
	} else {
		s.log.Debug("descriptor table grown in advance", "slots", n)
	}
	var stores []*certStore
	// Plain-HTTP entrypoints go to the event loops, which hand fasthttp
	// what they do not serve through a handoffListener.
	laneLns := map[string]*net.TCPListener{}
	handoffs := map[string]*handoffListener{}
	for _, ep := range s.entrypoints {
		ln, err := listenTCP(ep.Addr, 15*time.Second)
		if err != nil {
			closeAll()
			return fmt.Errorf("entrypoint %s: %w", ep.Name, err)
		}
		if tl, ok := ln.(*net.TCPListener); ok && s.laneServes(ep.Name) {
			laneLns[ep.Name] = tl
			handoffs[ep.Name] = newHandoffListener(ln.Addr())
			ls = append(ls, listener{s.newServer(ep.Name), handoffs[ep.Name]})
			s.log.Info("listening", "entrypoint", ep.Name, "addr", ln.Addr().String(), "tls", false)
			continue
		}
		ln = s.sweep.listener(ln)
		if files, ok := s.opts.TLS[ep.Name]; ok {
			store, err := newCertStore(files, s.log.With("entrypoint", ep.Name))
			if err != nil {
				ln.Close()
				closeAll()
				return fmt.Errorf("entrypoint %s: %w", ep.Name, err)
			}
			store.secrets = s.secretCerts[ep.Name]
			ln = tls.NewListener(ln, s.acme.tlsConfig(ep.Name, store.config()))
			stores = append(stores, store)
		} else if s.acme.serves(ep.Name) {
			ln = tls.NewListener(ln, s.acme.tlsConfig(ep.Name, nil))
		}
		ls = append(ls, listener{s.newServer(ep.Name), ln})
		s.log.Info("listening", "entrypoint", ep.Name, "addr", ln.Addr().String(), "tls", s.secretCerts[ep.Name] != nil || s.acme.serves(ep.Name))
	}
	closeLaneLns := func() {
		for _, tl := range laneLns {
			tl.Close()
		}
	}
	defer closeLaneLns()
	if s.opts.Admin != "" {
		ln, err := net.Listen("tcp", s.opts.Admin)
		if err != nil {
			closeAll()
			return fmt.Errorf("admin listener: %w", err)
		}
		ls = append(ls, listener{s.newAdminServer(), ln})
		s.log.Info("admin listening", "addr", ln.Addr().String())
	}

	if !s.opts.TunnelGoroutines {
		eng, err := newEngine(runtime.GOMAXPROCS(0), s.opts.TunnelIdleTimeout)
		if err != nil {
			s.log.Warn("tunnels run on goroutines", "err", err)
		}
		s.engine = eng
	}

	var wg sync.WaitGroup
	// The sweep outlives ctx: deadlines hold through the shutdown.
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	s.sweep.start()
	wg.Go(func() { s.sweep.run(sweepCtx) })
	if len(laneLns) > 0 {
		lane, err := newLane(s, runtime.GOMAXPROCS(0), laneLns, handoffs)
		if err != nil {
			// fasthttp serves them all, as with --http-goroutines.
			s.log.Warn("plain HTTP served by goroutines", "err", err)
			for i, l := range ls {
				if h, ok := l.ln.(*handoffListener); ok {
					for _, tl := range laneLns {
						if tl.Addr() == h.Addr() {
							ls[i].ln = s.sweep.listener(tl)
						}
					}
				}
			}
			laneLns = nil
		}
		if lane != nil {
			s.lane.Store(lane)
		}
	}
	errc := make(chan error, len(ls))
	for _, l := range ls {
		wg.Go(func() {
			if err := l.srv.Serve(l.ln); err != nil {
				errc <- err
			}
		})
	}
	wg.Go(func() { s.access.run(ctx) })
	for _, st := range stores {
		wg.Go(func() { st.run(ctx, s.opts.CertPoll) })
	}
	s.ready.Store(true)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	s.ready.Store(false)
	if d := s.opts.ShutdownDelay; d > 0 && runErr == nil {
		s.log.Info("shutting down: /ping answers 503; still serving", "for", d)
		time.Sleep(d)
	}
	s.log.Info("shutting down", "tunnels", s.tunnels.count())
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownGrace)
	defer cancel()
	if lane := s.lane.Load(); lane != nil {
		lane.shutdown(sctx)
		closeLaneLns()
	}
	for _, l := range ls {
		if err := l.srv.ShutdownWithContext(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			s.log.Warn("shutdown", "err", err)
		}
	}
	s.tunnels.closeAll(s.opts.DrainWindow)
	if lane := s.lane.Load(); lane != nil {
		lane.stop() // after the tunnels it runs have closed
	}
	if s.engine != nil {
		s.engine.stop()
	}
	s.ctrl.stop()
	stopSweep()
	wg.Wait()
	s.access.flush()
	return runErr
}

// laneServes reports whether the event loops serve entrypoint: a plain
// HTTP one without ACME or an HTTPS redirect, unless HTTPGoroutines.
func (s *Server) laneServes(entrypoint string) bool {
	_, tls := s.opts.TLS[entrypoint]
	_, redirect := s.redirects[entrypoint]
	return !s.opts.HTTPGoroutines && !tls && !redirect && !s.acme.serves(entrypoint) && !s.acme.answersChallenges(entrypoint)
}

// keepAliveInterval is the time between TCP keepalive probes;
// backendKeepIdle is the idle time before the first, on backend connections.
const (
	keepAliveInterval = 15 * time.Second
	backendKeepIdle   = 30 * time.Second
)

// keepAlive is TCP keepalive after idle, probing every keepAliveInterval.
// The probe count is left at the kernel's (9 on Linux, Go's default too),
// which saves a setsockopt on every connection dialed.
func keepAlive(idle time.Duration) net.KeepAliveConfig {
	return net.KeepAliveConfig{Enable: true, Idle: idle, Interval: keepAliveInterval, Count: -1}
}

// newServer returns the fasthttp server of one entrypoint.
func (s *Server) newServer(entrypoint string) *fasthttp.Server {
	return &fasthttp.Server{
		Handler: s.acme.httpHandler(entrypoint, func(ctx *fasthttp.RequestCtx) { s.serve(ctx, entrypoint) }),
		// A proxy names no Server of its own: the backend's passes, and
		// none is added when it sent none.
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		NoDefaultDate:         false,
		// The clock is read once per request, by serve (ctx.Time()).
		LazyRequestTime:              true,
		ReadBufferSize:               readBufferSize,
		ReadTimeout:                  s.opts.Limits.ReadTimeout,
		IdleTimeout:                  s.opts.Limits.IdleTimeout,
		Concurrency:                  s.opts.Limits.MaxConns,
		MaxRequestBodySize:           s.opts.Limits.MaxBodyBytes,
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		// No TCPKeepalive: the listener turns TCP keepalive on for every
		// accepted connection (listenConfig), which is what keeps half-open
		// tunnels from living forever; fasthttp's option would only set
		// SO_KEEPALIVE a second time.
		CloseOnShutdown:               true,
		ErrorHandler:                  parseError,
		Logger:                        fasthttpLogger{s.log},
		DisableHeaderNamesNormalizing: false,
	}
}

// newHostClient returns the keep-alive pool for one backend.
func (s *Server) newHostClient(addr string) *fasthttp.HostClient {
	c := s.newProbeClient(addr)
	c.Transport = transport{}
	return c
}

// newProbeClient returns a backend's pool with fasthttp's own transport,
// which honours a per-request timeout (DoTimeout): a health probe's. It
// keeps probes off the requests' pool, as HAProxy's checks are.
func (s *Server) newProbeClient(addr string) *fasthttp.HostClient {
	return &fasthttp.HostClient{
		Addr:                          addr,
		NoDefaultUserAgentHeader:      true,
		MaxConns:                      s.opts.MaxConnsPerBackend,
		MaxIdleConnDuration:           60 * time.Second,
		MaxConnWaitTimeout:            s.opts.Limits.BackendQueueTimeout,
		ReadTimeout:                   s.opts.Limits.UpstreamTimeout,
		ReadBufferSize:                readBufferSize,
		DisableHeaderNamesNormalizing: true,
		// The backend receives the normalized path the rule matched (dot
		// segments resolved, %2F decoded), so no route can be reached or
		// escaped through "..", encoded slashes or dot segments.
		DisablePathNormalizing: false,
		StreamResponseBody:     true,
		RetryIfErr:             retryOnDeadConn,
		Dial: func(addr string) (net.Conn, error) {
			c, err := s.dialer.Dial("tcp", addr)
			if err != nil {
				return nil, err
			}
			return s.sweep.wrap(c), nil
		},
	}
}

// fasthttpLogger routes fasthttp's own messages to slog at Debug: they are
// client errors (bad requests, resets), not operator news.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	if l.log.Enabled(context.Background(), slog.LevelDebug) {
		l.log.Debug(fmt.Sprintf(format, args...), "component", "fasthttp")
	}
}
