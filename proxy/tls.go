package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/latch-proxy/latch/proxy/config"
)

// CertFiles names a certificate and its key in PEM files.
type CertFiles struct {
	Cert, Key string
}

// certStore serves the certificates of one TLS entrypoint, choosing by SNI,
// and reloads them when their files change. Safe for concurrent use.
type certStore struct {
	files []CertFiles
	certs atomic.Pointer[[]*tls.Certificate]
	// seen holds the file contents the current certificates came from.
	seen [][]byte
	log  *slog.Logger
	// secrets holds the certificates from cluster Secrets (see
	// tlssecrets.go); nil or empty: files only.
	secrets *atomic.Pointer[sniIndex]
}

// newCertStore loads every pair; an error names the failing files.
func newCertStore(files []CertFiles, log *slog.Logger) (*certStore, error) {
	s := &certStore{files: files, log: log}
	if _, err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// load reads the files and, when they differ from what is served, swaps
// in the new certificates. It reports whether anything changed.
func (s *certStore) load() (bool, error) {
	var raw [][]byte
	certs := make([]*tls.Certificate, 0, len(s.files))
	for _, f := range s.files {
		c, err := os.ReadFile(f.Cert)
		if err != nil {
			return false, fmt.Errorf("certificate %s: %w", f.Cert, err)
		}
		k, err := os.ReadFile(f.Key)
		if err != nil {
			return false, fmt.Errorf("key %s: %w", f.Key, err)
		}
		pair, err := tls.X509KeyPair(c, k)
		if err != nil {
			return false, fmt.Errorf("certificate %s with key %s: %w", f.Cert, f.Key, err)
		}
		certs = append(certs, &pair)
		raw = append(raw, c, k)
	}
	if s.seen != nil && slices.EqualFunc(raw, s.seen, bytes.Equal) {
		return false, nil
	}
	s.seen = raw
	s.certs.Store(&certs)
	return true, nil
}

// run reloads every interval until ctx ends. A bad new file is logged and
// the certificates in use stay. Without files it returns at once.
func (s *certStore) run(ctx context.Context, interval time.Duration) {
	if len(s.files) == 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := s.load()
		switch {
		case err != nil:
			s.log.Error("certificate files changed but cannot be used; keeping the current ones", "err", err)
		case changed:
			s.log.Info("certificates reloaded", "files", len(s.files))
		}
	}
}

// certificate picks the first file certificate the client supports, by
// SNI and signature schemes; else a certificate from a Secret whose names
// match the SNI; else the first file certificate, or the first from a
// Secret when there are no files. Files win over Secrets for the names
// both cover.
func (s *certStore) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	certs := *s.certs.Load()
	for _, c := range certs {
		if hello.SupportsCertificate(c) == nil {
			return c, nil
		}
	}
	// Certificates from cluster Secrets.
	var idx *sniIndex
	if s.secrets != nil {
		idx = s.secrets.Load()
	}
	if idx != nil {
		if c := idx.lookup(hello); c != nil {
			return c, nil
		}
	}
	switch {
	case len(certs) > 0:
		return certs[0], nil
	case idx != nil && idx.first != nil:
		return idx.first, nil
	}
	return nil, errors.New("no certificate")
}

// config is the TLS configuration of an entrypoint: TLS 1.2 and up, Go's
// modern AEAD suites for 1.2, HTTP/1.1 (fasthttp speaks no HTTP/2).
func (s *certStore) config() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: s.certificate,
		NextProtos:     []string{"http/1.1"},
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305,
		},
	}
}

// redirectPorts maps each redirecting entrypoint to the ":PORT" suffix of
// its TLS target ("" for 443), computed once.
func redirectPorts(eps []config.Entrypoint, redirects map[string]string) map[string]string {
	out := map[string]string{}
	for from, to := range redirects {
		for _, ep := range eps {
			if ep.Name != to {
				continue
			}
			_, port, err := net.SplitHostPort(ep.Addr)
			if err != nil || port == "443" {
				port = ""
			} else {
				port = ":" + port
			}
			out[from] = port
		}
	}
	return out
}

// redirect answers 308 to the same host and URI over https. It is the
// rare path and may allocate.
func (s *Server) redirect(ctx *fasthttp.RequestCtx, port string, start time.Time) {
	host := string(ctx.Request.Header.Host())
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	ctx.Response.Reset()
	ctx.Response.Header.Set("Location", "https://"+host+port+string(ctx.Request.RequestURI()))
	ctx.SetStatusCode(fasthttp.StatusPermanentRedirect)
	s.access.record(start, nil, nil, fasthttp.StatusPermanentRedirect, reasonNone, ctx.Method(), ctx.Path(), remoteAddr(ctx), 0)
}
