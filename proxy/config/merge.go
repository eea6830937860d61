package config

import (
	"errors"
	"fmt"
)

// Merge combines configurations from several sources (flags, files) into a
// new Config; nil parts are skipped and the parts are not modified. Order is
// kept: entrypoints, services, routes and TLS secrets appear in the order
// of the parts.
//
// Nothing is overridden silently: an entrypoint, service or named route
// declared by two parts is an error naming both origins. The one exception
// is an Implied service (one an IngressRoute names without declaring it): a
// declared service of that name replaces it, and two implied services of the
// same name collapse when they select the same backends. On conflict Merge
// returns nil and an errors.Join of one-line errors, one per conflict.
func Merge(parts ...*Config) (*Config, error) {
	out := &Config{}
	var errs []error

	eps := map[string]Entrypoint{}
	for _, p := range parts {
		if p == nil {
			continue
		}
		for _, e := range p.Entrypoints {
			if prev, dup := eps[e.Name]; dup {
				errs = append(errs, twice("entrypoint", e.Name, prev.Origin, e.Origin))
				continue
			}
			eps[e.Name] = e
			out.Entrypoints = append(out.Entrypoints, e)
		}
	}

	declared := map[string]Service{}
	for _, p := range parts {
		if p == nil {
			continue
		}
		for _, s := range p.Services {
			if s.Implied {
				continue
			}
			if prev, dup := declared[s.Name]; dup {
				errs = append(errs, twice("service", s.Name, prev.Origin, s.Origin))
				continue
			}
			declared[s.Name] = s
		}
	}
	implied := map[string]Service{}
	added := map[string]bool{}
	for _, p := range parts {
		if p == nil {
			continue
		}
		for _, s := range p.Services {
			if s.Implied {
				if _, ok := declared[s.Name]; ok {
					continue
				}
				if prev, dup := implied[s.Name]; dup {
					if !prev.sameTarget(s) {
						errs = append(errs, errorf("service %s is implied with two different targets: %s by %s and %s by %s (declare it with --service or in a file to choose)",
							quote(s.Name), prev.Source(), prev.Origin, s.Source(), s.Origin))
					}
					continue
				}
				implied[s.Name] = s
			} else if added[s.Name] {
				continue // a duplicate, reported above
			}
			added[s.Name] = true
			s.Addrs = append(s.Addrs[:0:0], s.Addrs...)
			out.Services = append(out.Services, s)
		}
	}

	routes := map[string]Route{}
	for _, p := range parts {
		if p == nil {
			continue
		}
		for _, r := range p.Routes {
			if r.Name != "" {
				if prev, dup := routes[r.Name]; dup {
					errs = append(errs, twice("route", r.Name, prev.Origin, r.Origin))
					continue
				}
				routes[r.Name] = r
			}
			out.Routes = append(out.Routes, r.clone())
		}
	}
	// Several objects may name one Secret: each reference is kept, with
	// its own entrypoints and hosts.
	for _, p := range parts {
		if p == nil {
			continue
		}
		for _, ts := range p.TLSSecrets {
			out.TLSSecrets = append(out.TLSSecrets, ts.clone())
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// twice reports a name declared by two sources.
func twice(what, name, origin1, origin2 string) error {
	if origin1 == origin2 {
		return errorf("%s %s is declared twice in %s", what, quote(name), origin1)
	}
	return errorf("%s %s is declared twice: in %s and in %s", what, quote(name), origin1, origin2)
}

// FromFlags parses repeated --entrypoint, --service and --route flag values
// into one Config. Routes without name= are named "route-N" after their
// position among the --route values (1-based), so a name stays the same
// while earlier flags stay the same. Each error is one line prefixed with
// its flag ("--route: ..."); the result is an errors.Join of all of them.
// FromFlags does not Validate: merge the file parts first.
func FromFlags(entrypoints, services, routes []string) (*Config, error) {
	c := &Config{}
	var errs []error
	for _, s := range entrypoints {
		e, err := ParseEntrypoint(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("--entrypoint: %w", err))
			continue
		}
		c.Entrypoints = append(c.Entrypoints, e)
	}
	for _, s := range services {
		svc, err := ParseService(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("--service: %w", err))
			continue
		}
		c.Services = append(c.Services, svc)
	}
	for i, s := range routes {
		r, err := ParseRoute(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("--route: %w", err))
			continue
		}
		if r.Name == "" {
			r.Name = fmt.Sprintf("route-%d", i+1)
		}
		c.Routes = append(c.Routes, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}
