package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/latch-proxy/latch/balancer"
	"github.com/latch-proxy/latch/proxy"
	"github.com/latch-proxy/latch/proxy/config"
)

// configOptions are the flags that describe routing, shared by serve and
// check so that check accepts exactly what serve would run.
type configOptions struct {
	entrypoints []string
	services    []string
	routes      []string
	files       []string
	trusted     []string
	cookieKeys  string
}

func (o *configOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&o.entrypoints, "entrypoint", nil, "a listener NAME=ADDR (repeatable; default web=:8000)")
	fs.StringArrayVar(&o.services, "service", nil, "a backend pool NAME=ADDR[,ADDR...], NAME=dns://HOST:PORT or NAME=k8s://[NAMESPACE/]SERVICE:PORT (repeatable)")
	fs.StringArrayVar(&o.routes, "route", nil, "a routing rule 'RULE -> SERVICE[; key=value ...]' (repeatable)")
	fs.StringArrayVar(&o.files, "file", nil, "a YAML file of routes and services, or Traefik IngressRoute documents; reloaded on change (repeatable)")
	fs.StringSliceVar(&o.trusted, "trusted-proxies", nil, "CIDRs whose X-Forwarded-* headers are kept (comma-separated)")
	fs.StringVar(&o.cookieKeys, "cookie-keys", "", "file of sticky-token keys, one per line as 64 hex digits, newest first")
}

// flagConfig parses the routing flags into a Config. Every bad value is one
// line naming the flag, the text and what was expected.
func (o *configOptions) flagConfig() (*config.Config, error) {
	cfg := &config.Config{}
	var errs []error
	for _, s := range o.entrypoints {
		ep, err := config.ParseEntrypoint(s)
		if err != nil {
			errs = append(errs, usagef("--entrypoint: %w", err))
			continue
		}
		ep.Origin = "--entrypoint"
		cfg.Entrypoints = append(cfg.Entrypoints, ep)
	}
	for _, s := range o.services {
		svc, err := config.ParseService(s)
		if err != nil {
			errs = append(errs, usagef("--service: %w", err))
			continue
		}
		svc.Origin = "--service"
		cfg.Services = append(cfg.Services, svc)
	}
	for i, s := range o.routes {
		r, err := config.ParseRoute(s)
		if err != nil {
			errs = append(errs, usagef("--route: %w", err))
			continue
		}
		if r.Name == "" {
			r.Name = fmt.Sprintf("route-%d", i+1)
		}
		r.Origin = "--route"
		cfg.Routes = append(cfg.Routes, r)
	}
	return cfg, errors.Join(errs...)
}

// readFiles reads every --file; the result is compared on reload.
func (o *configOptions) readFiles() ([][]byte, error) {
	out := make([][]byte, len(o.files))
	for i, name := range o.files {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, usagef("--file: %w", err)
		}
		out[i] = b
	}
	return out, nil
}

// load builds the complete configuration from flags and file contents,
// checks it, and compiles its rules.
func (o *configOptions) load(files [][]byte) (*config.Config, error) {
	cfg, err := o.flagConfig()
	if err != nil {
		return nil, err
	}
	parts := []*config.Config{cfg}
	for i, data := range files {
		fc, err := config.ParseFile(o.files[i], data)
		if err != nil {
			return nil, usagef("--file: %w", err)
		}
		parts = append(parts, fc)
	}
	merged, err := config.Merge(parts...)
	if err != nil {
		return nil, usageError{err}
	}
	if len(merged.Entrypoints) == 0 {
		merged.Entrypoints = []config.Entrypoint{config.DefaultEntrypoint()}
	}
	if err := merged.Validate(); err != nil {
		return nil, usageError{err}
	}
	if _, err := proxy.Compile(merged); err != nil {
		return nil, usageError{err}
	}
	return merged, nil
}

// trustedPrefixes parses --trusted-proxies; a bare IP means that one host.
func (o *configOptions) trustedPrefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range o.trusted {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, usagef("--trusted-proxies: %q: expected a CIDR (10.0.0.0/8) or an IP", s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// keyring loads --cookie-keys, or the built-in key when none is given.
func (o *configOptions) keyring() (*balancer.Keyring, bool, error) {
	if o.cookieKeys == "" {
		return balancer.BuiltinKeyring(), true, nil
	}
	data, err := os.ReadFile(o.cookieKeys)
	if err != nil {
		return nil, false, usagef("--cookie-keys: %w", err)
	}
	keys, err := balancer.ParseKeys(data)
	if err != nil {
		return nil, false, usagef("--cookie-keys %s: %w", o.cookieKeys, err)
	}
	kr, err := balancer.NewKeyring(keys)
	if err != nil {
		return nil, false, usagef("--cookie-keys %s: %w", o.cookieKeys, err)
	}
	return kr, false, nil
}
