package main

import (
	"crypto/x509"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/latch-proxy/latch/proxy"
	"github.com/latch-proxy/latch/proxy/config"
)

// acmeOptions are the flags of ACME certificates.
type acmeOptions struct {
	entrypoint string
	http       []string
	directory  string
	email      string
	cache      string
	caFile     string
	hosts      []string
}

func (o *acmeOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.entrypoint, "acme", "", "get the certificates of entrypoint NAME (which then speaks TLS) from an ACME CA, for the hosts its routes name in Host(...) and --acme-hosts; --tls certificates still win for the names they cover")
	fs.StringArrayVar(&o.http, "acme-http", nil, "also answer the CA's http-01 challenges on plain entrypoint NAME, before routing and redirects (repeatable; tls-alpn-01 on the --acme entrypoint is always tried first)")
	fs.StringVar(&o.directory, "acme-directory", proxy.DefaultACMEDirectory, "the CA's ACME directory URL; naming it accepts its terms of service")
	fs.StringVar(&o.email, "acme-email", "", "contact address for the ACME account (expiry and incident notices)")
	fs.StringVar(&o.cache, "acme-cache", "", "directory for the ACME account key and certificates, so restarts reuse them (required with --acme; created 0700)")
	fs.StringVar(&o.caFile, "acme-ca-file", "", "PEM file of extra CA certificates to trust for the --acme-directory's HTTPS (for a private or test CA)")
	fs.StringSliceVar(&o.hosts, "acme-hosts", nil, "host names that may get certificates even when no route names them (comma-separated)")
}

// parse checks the flags against the entrypoints and the --tls
// certificates, reads --acme-ca-file and creates --acme-cache. Without
// --acme it returns the zero proxy.ACME, or an error if another --acme-*
// flag was given.
func (o *acmeOptions) parse(eps []config.Entrypoint, certs map[string][]proxy.CertFiles) (proxy.ACME, error) {
	if o.entrypoint == "" {
		if o.cache != "" || o.email != "" || o.caFile != "" || len(o.hosts) > 0 || len(o.http) > 0 || o.directory != proxy.DefaultACMEDirectory {
			return proxy.ACME{}, usagef("--acme-*: ACME flags need --acme ENTRYPOINT (e.g. --acme websecure)")
		}
		return proxy.ACME{}, nil
	}
	known := map[string]bool{}
	for _, ep := range eps {
		known[ep.Name] = true
	}
	if !known[o.entrypoint] {
		return proxy.ACME{}, usagef("--acme: %q: no entrypoint of that name (declare it with --entrypoint %s=:443)", o.entrypoint, o.entrypoint)
	}
	cfg := proxy.ACME{Entrypoint: o.entrypoint, DirectoryURL: o.directory, Email: o.email, CacheDir: o.cache}
	for _, name := range o.http {
		switch {
		case !known[name]:
			return proxy.ACME{}, usagef("--acme-http: %q: no entrypoint of that name (declare it with --entrypoint %s=:80)", name, name)
		case name == o.entrypoint || hasKey(certs, name):
			return proxy.ACME{}, usagef("--acme-http: %q: expected a plain HTTP entrypoint, not a TLS one", name)
		}
		if !slices.Contains(cfg.HTTPEntrypoints, name) {
			cfg.HTTPEntrypoints = append(cfg.HTTPEntrypoints, name)
		}
	}
	if u, err := url.Parse(o.directory); err != nil || u.Scheme != "https" || u.Host == "" {
		return proxy.ACME{}, usagef("--acme-directory: %q: expected an https:// URL (e.g. %s)", o.directory, proxy.DefaultACMEDirectory)
	}
	if o.email != "" && (strings.HasPrefix(o.email, "mailto:") || strings.ContainsAny(o.email, " \t\r\n,") || !strings.Contains(o.email[1:], "@")) {
		return proxy.ACME{}, usagef("--acme-email: %q: expected one address such as ops@example.com", o.email)
	}
	if o.cache == "" {
		return proxy.ACME{}, usagef("--acme-cache: required with --acme, so that certificates survive restarts (e.g. --acme-cache /var/lib/latch/acme)")
	}
	if err := os.MkdirAll(o.cache, 0o700); err != nil {
		return proxy.ACME{}, usagef("--acme-cache: %w", err)
	}
	for _, h := range o.hosts {
		if err := checkACMEHost(h); err != "" {
			return proxy.ACME{}, usagef("--acme-hosts: %q: %s", h, err)
		}
		cfg.Hosts = append(cfg.Hosts, strings.ToLower(h))
	}
	if o.caFile != "" {
		pool, err := readCAFile(o.caFile)
		if err != nil {
			return proxy.ACME{}, err
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// checkACMEHost says what is wrong with h as a name to order a certificate
// for, or "" when nothing is.
func checkACMEHost(h string) string {
	switch {
	case net.ParseIP(h) != nil:
		return "expected a DNS name, not an IP address"
	case strings.HasPrefix(h, "*."):
		return "wildcards need the dns-01 challenge, which latch does not answer"
	case !strings.Contains(strings.Trim(h, "."), "."):
		return "expected a name with at least two labels (e.g. chat.example.com)"
	}
	for i := range len(h) {
		c := h[i] | 0x20
		if !('a' <= c && c <= 'z' || '0' <= h[i] && h[i] <= '9' || h[i] == '-' || h[i] == '.') {
			return "expected letters, digits, '-' and '.' only (punycode for other scripts)"
		}
	}
	return ""
}

// readCAFile returns the system roots plus the certificates of path.
func readCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("--acme-ca-file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, usagef("--acme-ca-file: %s: no PEM certificate in it", path)
	}
	return pool, nil
}
