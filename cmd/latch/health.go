package main

import (
	"slices"

	"github.com/spf13/pflag"

	"github.com/latch-proxy/latch/proxy/config"
)

// healthOptions are the active health check flags.
type healthOptions struct {
	checks []string
}

func (h *healthOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&h.checks, "health-check", nil, "check each backend of SERVICE actively: 'SERVICE=/PATH[; interval=5s; timeout=2s; healthy=2; unhealthy=3]' (repeatable)")
}

// parse reads the flags; every service must exist in cfg.
func (h *healthOptions) parse(cfg *config.Config) (map[string]config.HealthCheck, error) {
	out := map[string]config.HealthCheck{}
	for _, v := range h.checks {
		svc, hc, err := config.ParseHealthCheck(v)
		if err != nil {
			return nil, usagef("--health-check: %w", err)
		}
		if !slices.ContainsFunc(cfg.Services, func(s config.Service) bool { return s.Name == svc }) {
			return nil, usagef("--health-check: %q: no service named %q", v, svc)
		}
		out[svc] = hc
	}
	return out, nil
}
