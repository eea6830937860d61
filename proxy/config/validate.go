package config

import (
	"errors"
)

// Validate checks a complete configuration (after Merge and defaults):
// every field is well formed; entrypoint names and addresses, service names
// and route names are unique; routes name existing services, and routes
// and TLS secrets name existing entrypoints when any entrypoint is
// declared. It returns nil or an errors.Join of one-line errors, one per
// problem, in declaration order; callers may print them one per line
// (errors.Join's Error does exactly that) or take them apart with
// Unwrap() []error.
func (c *Config) Validate() error {
	if c == nil {
		return nil
	}
	var errs []error

	epNames := make(map[string]Entrypoint, len(c.Entrypoints))
	for i, e := range c.Entrypoints {
		switch {
		case !validEntrypointName(e.Name):
			errs = append(errs, errorf("entrypoint name %s: expected %s", quote(e.Name), entrypointNameRule))
		case hasKey(epNames, e.Name):
			errs = append(errs, twice("entrypoint", e.Name, epNames[e.Name].Origin, e.Origin))
		default:
			epNames[e.Name] = e
		}
		norm, err := normalizeListenAddr(e.Addr)
		if err != nil {
			errs = append(errs, errorf("entrypoint %s: %w", quote(e.Name), err))
			continue
		}
		for _, prev := range c.Entrypoints[:i] {
			if prevNorm, err := normalizeListenAddr(prev.Addr); err == nil && listenConflict(prevNorm, norm) {
				errs = append(errs, errorf("entrypoints %s and %s both listen on %s", quote(prev.Name), quote(e.Name), quote(norm)))
				break
			}
		}
	}

	services := make(map[string]Service, len(c.Services))
	for _, s := range c.Services {
		if err := validateService(s); err != nil {
			errs = append(errs, err)
		}
		if prev, dup := services[s.Name]; dup {
			errs = append(errs, twice("service", s.Name, prev.Origin, s.Origin))
			continue
		}
		services[s.Name] = s
	}

	routes := make(map[string]Route, len(c.Routes))
	for _, r := range c.Routes {
		if err := validateRoute(r); err != nil {
			errs = append(errs, err)
		}
		if prev, dup := routes[r.Name]; dup && r.Name != "" {
			errs = append(errs, twice("route", r.Name, prev.Origin, r.Origin))
		} else {
			routes[r.Name] = r
		}
		if _, ok := services[r.Service]; !ok && r.Service != "" {
			errs = append(errs, errorf("route %s references unknown service %s (known: %s)",
				quote(r.Name), quote(r.Service), knownList(keys(services))))
		}
		seen := make(map[string]bool, len(r.Entrypoints))
		for _, ep := range r.Entrypoints {
			if seen[ep] {
				errs = append(errs, errorf("route %s lists entrypoint %s twice", quote(r.Name), quote(ep)))
				continue
			}
			seen[ep] = true
			if len(c.Entrypoints) > 0 && !hasKey(epNames, ep) {
				errs = append(errs, errorf("route %s references unknown entrypoint %s (known: %s)",
					quote(r.Name), quote(ep), knownList(keys(epNames))))
			}
		}
	}
	for _, ts := range c.TLSSecrets {
		if err := validateTLSSecret(ts); err != nil {
			errs = append(errs, err)
			continue
		}
		for _, ep := range ts.Entrypoints {
			if len(c.Entrypoints) > 0 && !hasKey(epNames, ep) {
				errs = append(errs, errorf("TLS secret %s of %s references unknown entrypoint %s (known: %s)",
					quote(ts.String()), ts.Origin, quote(ep), knownList(keys(epNames))))
			}
		}
	}
	return errors.Join(errs...)
}

func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
