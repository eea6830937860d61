package main

import (
	"log/slog"
	"strings"
	"sync"

	"github.com/latch-proxy/latch/discovery"
	"github.com/latch-proxy/latch/proxy"
	"github.com/latch-proxy/latch/proxy/config"
)

// applier is what the configurator needs of the proxy: applying a
// configuration, and counting reloads for /metrics.
type applier interface {
	Apply(cfg *config.Config) error
	ObserveReload(err error)
}

// configurator owns the inputs of the running configuration (flags, the
// contents of --file, route objects from the cluster) and applies their
// merge whenever one changes. A broken file keeps the last good
// configuration; a broken cluster object is logged by name and skipped
// while everything else keeps working.
type configurator struct {
	o     *configOptions
	class string
	srv   applier
	log   *slog.Logger
	// applied, when set, is told every configuration that was applied,
	// while the configurator's lock is held: it must not call back.
	applied func(*config.Config)

	mu       sync.Mutex
	files    [][]byte
	objects  []discovery.Object
	reported map[string]string // object -> the error last logged for it
}

func newConfigurator(o *configOptions, class string, srv applier, files [][]byte, log *slog.Logger) *configurator {
	return &configurator{o: o, class: class, srv: srv, log: log, files: files, reported: map[string]string{}}
}

// setFiles applies new --file contents. On error the running
// configuration stays.
func (c *configurator) setFiles(files [][]byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.files
	c.files = files
	if err := c.applyLocked(); err != nil {
		c.files = prev
		return err
	}
	return nil
}

// setObjects applies a new list of cluster route objects.
func (c *configurator) setObjects(objs []discovery.Object) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.objects = objs
	err := c.applyLocked()
	c.srv.ObserveReload(err)
	if err != nil {
		c.log.Error("cluster routes changed but the configuration is not valid; keeping the running one", "err", oneLine(err))
	}
}

// build merges flags, files and every valid cluster object.
func (c *configurator) buildLocked() (*config.Config, error) {
	cfg, err := c.o.load(c.files)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, obj := range c.objects {
		key := obj.String()
		seen[key] = true
		next, err := c.withObject(cfg, obj)
		if err != nil {
			if c.reported[key] != err.Error() {
				c.reported[key] = err.Error()
				c.log.Error("skipping a route object", "object", key, "err", oneLine(err))
			}
			continue
		}
		if _, was := c.reported[key]; was {
			delete(c.reported, key)
			c.log.Info("route object fixed", "object", key)
		}
		cfg = next
	}
	for key := range c.reported {
		if !seen[key] {
			delete(c.reported, key)
		}
	}
	return cfg, nil
}

// withObject returns cfg plus one cluster object, or why it cannot be added.
func (c *configurator) withObject(cfg *config.Config, obj discovery.Object) (*config.Config, error) {
	var part *config.Config
	var err error
	if obj.Resource == discovery.Ingress {
		part, err = config.ParseIngress(obj.JSON, c.class)
	} else {
		part, err = config.ParseFile(obj.String(), obj.JSON)
	}
	if err != nil {
		return nil, err
	}
	next, err := config.Merge(cfg, part)
	if err != nil {
		return nil, err
	}
	if err := next.Validate(); err != nil {
		return nil, err
	}
	if _, err := proxy.Compile(next); err != nil {
		return nil, err
	}
	return next, nil
}

func (c *configurator) applyLocked() error {
	cfg, err := c.buildLocked()
	if err != nil {
		return err
	}
	if err := c.srv.Apply(cfg); err != nil {
		return err
	}
	if c.applied != nil {
		c.applied(cfg)
	}
	return nil
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }
