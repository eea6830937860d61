package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/latch-proxy/latch/discovery"
	"github.com/latch-proxy/latch/proxy/config"
)

// SourceFactory makes the discovery source of one service.
type SourceFactory func(svc config.Service) (discovery.Source, error)

// DefaultSources knows static and DNS services.
func DefaultSources(log *slog.Logger) SourceFactory {
	return func(svc config.Service) (discovery.Source, error) {
		switch svc.Kind {
		case config.Static:
			return discovery.NewStatic(svc.Addrs), nil
		case config.DNS:
			return discovery.NewDNS(svc.Host, svc.Port, 5*time.Second, nil, log.With("service", svc.Name)), nil
		default:
			return nil, fmt.Errorf("service %q: Kubernetes sources need --kubeconfig or an in-cluster config", svc.Name)
		}
	}
}

// controller runs one discovery source per service and rebuilds the table
// whenever the configuration or an endpoint set changes. Rebuilds happen as
// soon as a source publishes: there is no throttle.
type controller struct {
	s *Server

	mu      sync.Mutex
	cfg     *config.Config
	sets    map[string]discovery.Set
	running map[string]*watch
	wg      sync.WaitGroup
	// healthWG owns the active health checks' goroutines.
	healthWG sync.WaitGroup
	stopped  bool
}

// watch is one running source.
type watch struct {
	key    string
	cancel context.CancelFunc
}

func newController(s *Server) *controller {
	return &controller{s: s, sets: map[string]discovery.Set{}, running: map[string]*watch{}}
}

// sourceKey identifies what a service watches, so that a reload that keeps
// a service as it was keeps its source running.
func sourceKey(svc config.Service) string {
	svc.Origin = ""
	return fmt.Sprintf("%#v", svc)
}

func (c *controller) apply(cfg *config.Config) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return fmt.Errorf("server is shutting down")
	}
	// Make every new source before starting any, so a bad one changes nothing.
	type start struct {
		name, key string
		src       discovery.Source
	}
	var starts []start
	wanted := map[string]bool{}
	for _, svc := range cfg.Services {
		wanted[svc.Name] = true
		key := sourceKey(svc)
		if w := c.running[svc.Name]; w != nil && w.key == key {
			continue
		}
		src, err := c.s.opts.Sources(svc)
		if err != nil {
			return err
		}
		starts = append(starts, start{svc.Name, key, src})
	}
	if _, err := c.buildLocked(cfg); err != nil {
		return err
	}
	for name, w := range c.running {
		if !wanted[name] {
			w.cancel()
			delete(c.running, name)
			delete(c.sets, name)
		}
	}
	c.cfg = cfg
	for _, st := range starts {
		if old := c.running[st.name]; old != nil {
			old.cancel()
			delete(c.sets, st.name)
		}
		ctx, cancel := context.WithCancel(context.Background())
		w := &watch{key: st.key, cancel: cancel}
		c.running[st.name] = w
		c.wg.Go(func() {
			err := st.src.Run(ctx, func(set discovery.Set) { c.publish(st.name, w, set) })
			if err != nil {
				c.s.log.Error("discovery stopped", "service", st.name, "err", err)
			}
		})
	}
	c.rebuildLocked()
	return nil
}

// publish records a new endpoint set from the source w of service name.
func (c *controller) publish(name string, w *watch, set discovery.Set) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running[name] != w {
		return // a source that was replaced or stopped
	}
	c.sets[name] = set
	c.s.log.Debug("endpoints changed", "service", name, "endpoints", len(set))
	c.rebuildLocked()
}

func (c *controller) buildLocked(cfg *config.Config) (*Table, error) {
	return build(c.s.table.Load(), buildInput{
		cfg:     cfg,
		sets:    c.sets,
		keyring: c.s.opts.Keyring,
		now:     time.Now(),
		newHost: c.s.newHostClient,
	})
}

// rebuildLocked builds and publishes a table for the current config and
// sets. The config was checked by apply, so an error here keeps the old
// table and is logged.
func (c *controller) rebuildLocked() {
	if c.cfg == nil {
		return
	}
	prev := c.s.table.Load()
	t, err := c.buildLocked(c.cfg)
	if err != nil {
		c.s.metrics.buildFailed()
		c.s.log.Error("routing table not rebuilt; keeping the previous one", "err", err)
		return
	}
	c.s.metrics.bind(t)
	c.s.table.Store(t)
	gone := retired(prev, t)
	for _, up := range gone {
		up.client.CloseIdleConnections()
	}
	c.healthChecks(t, gone)
}

// stop ends every source and waits for them.
func (c *controller) stop() {
	c.mu.Lock()
	c.stopped = true
	for _, w := range c.running {
		w.cancel()
	}
	if t := c.s.table.Load(); t != nil {
		for _, up := range t.upstreams {
			stopHealth(up)
		}
	}
	c.mu.Unlock()
	c.wg.Wait()
	c.healthWG.Wait()
}
