package proxy

import (
	"crypto/tls"
	"slices"
	"strings"
	"sync/atomic"
)

// SecretCert is a certificate from a cluster Secret, and where to serve it.
type SecretCert struct {
	// Secret names the Secret, NAMESPACE/NAME.
	Secret string
	// Entrypoints limits the certificate to these TLS entrypoints; nil
	// means every TLS entrypoint.
	Entrypoints []string
	// Hosts are SNI names the certificate is served for besides the DNS
	// names of its leaf (an Ingress's spec.tls hosts); "*.example.com"
	// stands for one more label.
	Hosts []string
	// Cert is the certificate, with Leaf set. It is shared: nobody may
	// modify it.
	Cert *tls.Certificate
}

// secretCerts holds, for each TLS entrypoint, the certificates from
// Secrets it serves. The set of entrypoints is fixed by New; each index is
// swapped whole, so a handshake sees one version or the next.
type secretCerts map[string]*atomic.Pointer[sniIndex]

// newSecretCerts prepares an empty index for every TLS entrypoint.
func newSecretCerts(tlsEntrypoints map[string][]CertFiles) secretCerts {
	out := make(secretCerts, len(tlsEntrypoints))
	for ep := range tlsEntrypoints {
		out[ep] = &atomic.Pointer[sniIndex]{}
	}
	return out
}

// SetSecretCerts replaces every certificate from cluster Secrets by certs,
// in their order of precedence: where two fit a client, the earlier one is
// served. A certificate whose entrypoints include no TLS entrypoint is
// ignored. Handshakes in flight keep what they chose. Safe for concurrent
// use; certs is not kept.
func (s *Server) SetSecretCerts(certs []SecretCert) {
	for ep, p := range s.secretCerts {
		p.Store(newSNIIndex(certs, ep))
	}
}

// sniIndex finds the certificates from Secrets of one entrypoint by SNI.
// It is immutable once built.
type sniIndex struct {
	// byName maps lower-case DNS names and "*.suffix" wildcards to their
	// certificates, in order of precedence.
	byName map[string][]*tls.Certificate
	// first is served when no name matches and the entrypoint has no
	// certificate files; nil when the index is empty.
	first *tls.Certificate
}

func newSNIIndex(certs []SecretCert, entrypoint string) *sniIndex {
	x := &sniIndex{byName: map[string][]*tls.Certificate{}}
	for _, c := range certs {
		if c.Cert == nil || (c.Entrypoints != nil && !slices.Contains(c.Entrypoints, entrypoint)) {
			continue
		}
		if x.first == nil {
			x.first = c.Cert
		}
		var names []string
		if c.Cert.Leaf != nil {
			names = append(names, c.Cert.Leaf.DNSNames...)
		}
		names = append(names, c.Hosts...)
		seen := map[string]bool{}
		for _, n := range names {
			n = strings.ToLower(strings.TrimSuffix(n, "."))
			if n == "" || seen[n] {
				continue
			}
			seen[n] = true
			x.byName[n] = append(x.byName[n], c.Cert)
		}
	}
	return x
}

// lookup returns the certificate for the client's SNI: exact names before
// a wildcard, and among several the first the client supports (signature
// schemes, key type), else the first. nil when no name matches.
func (x *sniIndex) lookup(hello *tls.ClientHelloInfo) *tls.Certificate {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name == "" {
		return nil
	}
	cands := x.byName[name]
	if len(cands) == 0 {
		if i := strings.IndexByte(name, '.'); i > 0 {
			cands = x.byName["*"+name[i:]]
		}
	}
	for _, c := range cands {
		if hello.SupportsCertificate(c) == nil {
			return c
		}
	}
	if len(cands) > 0 {
		return cands[0]
	}
	return nil
}
