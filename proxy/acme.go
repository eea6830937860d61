package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/valyala/fasthttp"
	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// DefaultACMEDirectory is Let's Encrypt's production ACME directory.
const DefaultACMEDirectory = autocert.DefaultACMEDirectory

// ACME gets the certificates of one TLS entrypoint from an ACME CA, through
// golang.org/x/crypto/acme/autocert. Only host names that a route on that
// entrypoint names in a Host(...) matcher, or that Hosts lists, may get a
// certificate, so a stranger's SNI cannot make latch order one. The CA
// checks control of a name with tls-alpn-01 on the entrypoint itself and,
// when HTTPEntrypoints is set, with http-01 there.
type ACME struct {
	// Entrypoint names the TLS entrypoint; "" turns ACME off. Certificates
	// from Options.TLS still win for the names they cover.
	Entrypoint string
	// HTTPEntrypoints answer /.well-known/acme-challenge/ before routing,
	// for http-01 (which the CA tries on port 80).
	HTTPEntrypoints []string
	// DirectoryURL is the CA's directory; "" means DefaultACMEDirectory.
	DirectoryURL string
	// Email is the account's contact address; may be empty.
	Email string
	// CacheDir keeps the account key and the certificates, so that a
	// restart serves them without asking the CA again. Required.
	CacheDir string
	// Hosts may get certificates even when no route names them.
	Hosts []string
	// RootCAs verify the directory's HTTPS certificate; nil means the
	// system's roots.
	RootCAs *x509.CertPool
}

// errACMEHostNotAllowed is the host policy's refusal.
var errACMEHostNotAllowed = errors.New("no route on the ACME entrypoint names this host")

// acmeChallengePrefix starts every http-01 challenge path.
var acmeChallengePrefix = []byte("/.well-known/acme-challenge/")

// acmeIssuer is the running ACME side of a Server. A nil *acmeIssuer means
// ACME is off; its methods then change nothing. Safe for concurrent use.
//
// autocert's manager has no Close: its renewal timers (one per certificate)
// and the short clean-ups it starts after an order cannot be stopped from
// here. A timer holds no goroutine until it fires, and latch exits after
// Run, so nothing is left running in practice.
type acmeIssuer struct {
	entrypoint string
	http       []string
	manager    *autocert.Manager
	// challenges answers http-01; nil without HTTPEntrypoints.
	challenges http.Handler
	extra      map[string]bool
	table      func() *Table
	// hosts caches the hosts of the routing table it was computed from.
	hosts atomic.Pointer[acmeHosts]
	log   *slog.Logger
}

// acmeHosts are the allowed hosts of one routing table version.
type acmeHosts struct {
	version uint64
	hosts   map[string]bool
}

// newACMEIssuer returns nil when cfg.Entrypoint is empty. table returns the
// routing table in use (nil before the first one).
func newACMEIssuer(cfg ACME, table func() *Table, log *slog.Logger) *acmeIssuer {
	if cfg.Entrypoint == "" {
		return nil
	}
	dir := cfg.DirectoryURL
	if dir == "" {
		dir = DefaultACMEDirectory
	}
	a := &acmeIssuer{
		entrypoint: cfg.Entrypoint,
		http:       slices.Clone(cfg.HTTPEntrypoints),
		extra:      map[string]bool{},
		table:      table,
		log:        log.With("component", "acme"),
	}
	for _, h := range cfg.Hosts {
		a.extra[normalizeACMEHost(h)] = true
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	a.manager = &autocert.Manager{
		// Configuring a CA accepts its terms of service, as in Traefik.
		Prompt:     autocert.AcceptTOS,
		Cache:      acmeCache{autocert.DirCache(cfg.CacheDir), a.log.With("entrypoint", cfg.Entrypoint)},
		HostPolicy: a.allow,
		Email:      cfg.Email,
		Client: &acme.Client{
			DirectoryURL: dir,
			HTTPClient:   &http.Client{Transport: transport},
			UserAgent:    "latch",
		},
	}
	if len(a.http) > 0 {
		// Also tells the manager to try http-01 after tls-alpn-01.
		a.challenges = a.manager.HTTPHandler(http.NotFoundHandler())
	}
	return a
}

// serves reports whether entrypoint gets its certificates from the CA.
func (a *acmeIssuer) serves(entrypoint string) bool {
	return a != nil && entrypoint == a.entrypoint
}

// tlsConfig returns base for every entrypoint but the ACME one. For that
// one it returns a copy of base that also offers the tls-alpn-01 protocol
// and takes certificates from the CA for names base's certificates do not
// cover. A nil base means the entrypoint has no certificate files.
func (a *acmeIssuer) tlsConfig(entrypoint string, base *tls.Config) *tls.Config {
	if !a.serves(entrypoint) {
		return base
	}
	if base == nil {
		// latch's TLS parameters, from the one place that sets them, over
		// a store without certificates.
		empty := &certStore{log: a.log}
		empty.certs.Store(&[]*tls.Certificate{})
		base = empty.config()
	}
	cfg := base.Clone()
	cfg.NextProtos = append(slices.Clone(base.NextProtos), acme.ALPNProto)
	cfg.GetCertificate = a.certificate(base.GetCertificate)
	return cfg
}

// certificate answers tls-alpn-01 challenges, then prefers a certificate
// of files that fits the client, then asks the CA (or its cache), and
// falls back to whatever files offered.
func (a *acmeIssuer) certificate(files func(*tls.ClientHelloInfo) (*tls.Certificate, error)) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == acme.ALPNProto {
			return a.manager.GetCertificate(hello)
		}
		fc, ferr := files(hello)
		if ferr == nil && hello.SupportsCertificate(fc) == nil {
			return fc, nil
		}
		if hello.ServerName == "" {
			return fc, ferr
		}
		c, err := a.manager.GetCertificate(hello)
		if err == nil {
			return c, nil
		}
		if errors.Is(err, errACMEHostNotAllowed) {
			a.log.Debug("no ACME certificate for a host no route names", "entrypoint", a.entrypoint, "host", hello.ServerName)
		} else {
			a.log.Warn("no ACME certificate", "entrypoint", a.entrypoint, "host", hello.ServerName, "err", err)
		}
		if ferr == nil {
			return fc, nil
		}
		return nil, err
	}
}

// allow is the manager's host policy: hosts of Host(...) matchers of the
// routes on the ACME entrypoint, and the extra hosts. host may carry a
// port (the Host header of an http-01 request).
func (a *acmeIssuer) allow(_ context.Context, host string) error {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = normalizeACMEHost(host)
	if a.extra[host] || a.routeHosts()[host] {
		return nil
	}
	return fmt.Errorf("%w: %q", errACMEHostNotAllowed, host)
}

// routeHosts returns the allowed hosts of the table in use, computed once
// per table version. The result must not be modified.
func (a *acmeIssuer) routeHosts() map[string]bool {
	t := a.table()
	if t == nil {
		return nil
	}
	if c := a.hosts.Load(); c != nil && c.version == t.version {
		return c.hosts
	}
	hosts := map[string]bool{}
	for _, r := range t.routes {
		if len(r.entrypoints) > 0 && !slices.Contains(r.entrypoints, a.entrypoint) {
			continue
		}
		for _, h := range ruleHosts(r.rule.String()) {
			hosts[h] = true
		}
	}
	a.hosts.Store(&acmeHosts{version: t.version, hosts: hosts})
	return hosts
}

func normalizeACMEHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// httpHandler returns next, preceded on http-01 entrypoints by the answer
// to ACME challenges: those paths never reach routing, redirects or the
// access log.
func (a *acmeIssuer) httpHandler(entrypoint string, next fasthttp.RequestHandler) fasthttp.RequestHandler {
	if !a.answersChallenges(entrypoint) {
		return next
	}
	return func(ctx *fasthttp.RequestCtx) {
		if !bytes.HasPrefix(ctx.Path(), acmeChallengePrefix) {
			next(ctx)
			return
		}
		a.answerHTTP01(ctx, entrypoint)
	}
}

// answersChallenges reports whether entrypoint answers HTTP-01 challenges.
func (a *acmeIssuer) answersChallenges(entrypoint string) bool {
	return a != nil && a.challenges != nil && slices.Contains(a.http, entrypoint)
}

// answerHTTP01 runs autocert's net/http challenge handler on a fasthttp
// request. It is the rare path and may allocate.
func (a *acmeIssuer) answerHTTP01(ctx *fasthttp.RequestCtx, entrypoint string) {
	// The request's context is Background: autocert bounds its cache
	// lookup itself, and RequestCtx.Done needs a running fasthttp server.
	r := &http.Request{
		Method: string(ctx.Method()),
		URL:    &url.URL{Path: string(ctx.Path())},
		Host:   string(ctx.Host()),
		Header: http.Header{},
	}
	w := &challengeWriter{header: http.Header{}}
	a.challenges.ServeHTTP(w, r)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	ctx.Response.Reset()
	ctx.SetStatusCode(w.status)
	if ct := w.header.Get("Content-Type"); ct != "" {
		ctx.SetContentType(ct)
	}
	ctx.SetBody(w.body.Bytes())
	a.log.Debug("answered an ACME http-01 challenge", "entrypoint", entrypoint, "host", string(ctx.Host()), "status", w.status)
}

// challengeWriter collects the answer of autocert's challenge handler.
type challengeWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *challengeWriter) Header() http.Header { return w.header }

func (w *challengeWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *challengeWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}

// acmeCache is autocert's directory cache, logging every certificate it
// stores: a new or renewed certificate is news for an operator.
type acmeCache struct {
	autocert.Cache
	log *slog.Logger
}

// Put stores data under key. autocert's keys are the host name for a
// certificate (with "+rsa" for the RSA one) and contain "+" otherwise
// (account key, challenge tokens).
func (c acmeCache) Put(ctx context.Context, key string, data []byte) error {
	err := c.Cache.Put(ctx, key, data)
	host, rsa := strings.CutSuffix(key, "+rsa")
	if strings.Contains(host, "+") {
		return err
	}
	if err != nil {
		c.log.Error("storing an ACME certificate", "host", host, "err", err)
		return err
	}
	c.log.Info("ACME certificate obtained", "host", host, "rsa", rsa)
	return nil
}
