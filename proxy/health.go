package proxy

import (
	"context"
	"math"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/latch-proxy/latch/proxy/config"
)

// Passive outlier detection: each consecutive dial failure of a backend
// doubles how long it gets no new requests, from DownFor up to maxDownFor;
// a success resets it.
const maxDownFor = time.Minute

// failed records a failed connection to up at now and takes it out of
// rotation for a backoff that grows with consecutive failures.
func (s *Server) failed(up *upstream, now time.Time) {
	n := up.fails.Add(1)
	d := s.opts.DownFor << min(n-1, 16)
	if d > maxDownFor || d <= 0 {
		d = maxDownFor
	}
	up.backend.MarkDown(now.Add(d).UnixNano())
}

// succeeded resets up's failure count. One atomic load when there is
// nothing to reset.
func succeeded(up *upstream) {
	if up.fails.Load() != 0 {
		up.fails.Store(0)
	}
}

// healthRun is the active health check of one upstream.
type healthRun struct {
	check  config.HealthCheck
	cancel context.CancelFunc
	done   chan struct{}
}

// healthChecks starts, restarts and stops active checks so that exactly
// the upstreams of t whose service has a check run one. Called by the
// controller, under its lock, after t is published.
func (c *controller) healthChecks(t *Table, retired []*upstream) {
	for _, up := range retired {
		stopHealth(up)
	}
	for _, up := range t.upstreams {
		hc, ok := c.s.opts.HealthChecks[up.service]
		switch {
		case !ok:
			stopHealth(up)
		case up.health == nil || up.health.check != hc:
			stopHealth(up)
			ctx, cancel := context.WithCancel(context.Background())
			run := &healthRun{check: hc, cancel: cancel, done: make(chan struct{})}
			up.health = run
			c.healthWG.Go(func() {
				defer close(run.done)
				c.s.probe(ctx, up, hc)
			})
		}
	}
}

func stopHealth(up *upstream) {
	if up.health != nil {
		up.health.cancel()
		up.health = nil
	}
}

// probe checks up every interval until ctx ends. Crossing the unhealthy
// threshold takes the backend out (new and sticky sessions alike, so its
// clients re-pick with a new cookie); crossing the healthy threshold brings
// it back.
func (s *Server) probe(ctx context.Context, up *upstream, hc config.HealthCheck) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	client := s.newProbeClient(up.backend.Addr())
	defer client.CloseIdleConnections()
	log := s.log.With("service", up.service, "backend", up.backend.Addr())
	healthy, okRun, failRun := true, 0, 0
	t := time.NewTicker(hc.Interval)
	defer t.Stop()
	for {
		req.Reset()
		req.SetRequestURI(hc.Path)
		req.Header.SetHost(up.backend.Addr())
		req.Header.Set("User-Agent", "latch-health-check")
		resp.Reset()
		resp.SkipBody = true
		err := client.DoTimeout(req, resp, hc.Timeout)
		if resp.BodyStream() != nil {
			resp.CloseBodyStream()
		}
		good := err == nil && resp.StatusCode() < 400
		if good {
			okRun, failRun = okRun+1, 0
		} else {
			okRun, failRun = 0, failRun+1
		}
		switch {
		case healthy && failRun >= hc.Unhealthy:
			healthy = false
			up.backend.MarkDown(math.MaxInt64)
			log.Warn("backend unhealthy", "path", hc.Path, "status", resp.StatusCode(), "err", err)
		case !healthy && okRun >= hc.Healthy:
			healthy = true
			up.backend.MarkUp()
			succeeded(up)
			log.Info("backend healthy again", "path", hc.Path)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
