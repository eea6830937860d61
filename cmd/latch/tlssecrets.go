package main

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"sync"

	"github.com/latch-proxy/latch/discovery"
	"github.com/latch-proxy/latch/proxy"
	"github.com/latch-proxy/latch/proxy/config"
)

// secretCertSetter is what tlsSecrets needs of the proxy.
type secretCertSetter interface {
	SetSecretCerts(certs []proxy.SecretCert)
}

// tlsSecrets serves the TLS Secrets that the running configuration names:
// it tells the watcher which Secrets to watch (only those some TLS
// entrypoint would serve) and hands the proxy their certificates whenever
// the configuration or a Secret changes. Safe for concurrent use.
type tlsSecrets struct {
	tlsEPs  map[string]bool          // the entrypoints that serve TLS
	watcher *discovery.SecretWatcher // nil without cluster access
	srv     secretCertSetter
	log     *slog.Logger

	mu      sync.Mutex
	refs    []config.TLSSecret    // wanted, in order of precedence
	secrets []discovery.TLSSecret // the watcher's last snapshot
	warned  map[string]bool       // references already logged as ignored
	release func()                // ends the readiness hold; nil when none is pending
	settled bool                  // the configuration's sources have all arrived once
}

// newTLSSecrets prepares the secrets of the TLS entrypoints (the keys of
// tlsEPs); watcher is nil when latch does not read the cluster.
func newTLSSecrets(tlsEPs map[string][]proxy.CertFiles, watcher *discovery.SecretWatcher, srv secretCertSetter, log *slog.Logger) *tlsSecrets {
	t := &tlsSecrets{tlsEPs: map[string]bool{}, watcher: watcher, srv: srv, log: log, warned: map[string]bool{}}
	for ep := range tlsEPs {
		t.tlsEPs[ep] = true
	}
	return t
}

// watching reports whether Secrets are read at all: latch reads the
// cluster and has a TLS entrypoint.
func (t *tlsSecrets) watching() bool { return t.watcher != nil && len(t.tlsEPs) > 0 }

// run watches the wanted Secrets until ctx ends. release ends a readiness
// hold taken by the caller: it is called once settle has been called and
// every Secret then wanted has answered (found, missing or refused), so a
// fresh replica takes no TLS traffic before it has its certificates.
func (t *tlsSecrets) run(ctx context.Context, release func()) {
	t.mu.Lock()
	t.release = release
	t.checkReadyLocked()
	t.mu.Unlock()
	if err := t.watcher.Run(ctx, t.setSecrets); err != nil {
		t.log.Error("watching TLS secrets stopped", "err", err)
	}
}

// settle says that the configuration has seen all of its sources once
// (the first list of cluster route objects, or none is watched).
func (t *tlsSecrets) settle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.settled = true
	t.checkReadyLocked()
}

// setConfig takes the TLS Secrets of a configuration just applied.
func (t *tlsSecrets) setConfig(cfg *config.Config) {
	t.mu.Lock()
	defer t.mu.Unlock()
	served, ignored := servedSecrets(cfg.TLSSecrets, t.tlsEPs)
	for _, ts := range ignored {
		if key := ts.Origin + " " + ts.String(); !t.warned[key] {
			t.warned[key] = true
			t.log.Warn("a route names a TLS secret, but none of its entrypoints serves TLS (--tls); not reading it",
				"secret", ts.String(), "object", ts.Origin, "entrypoints", ts.Entrypoints)
		}
	}
	if t.watcher == nil {
		for _, ts := range served {
			if key := ts.Origin + " " + ts.String(); !t.warned[key] {
				t.warned[key] = true
				t.log.Warn("a route names a TLS secret, but latch does not read the cluster (--kubeconfig, --providers); not serving it",
					"secret", ts.String(), "object", ts.Origin)
			}
		}
		return
	}
	t.refs = served
	t.watcher.Watch(secretRefs(served))
	t.pushLocked()
}

// setSecrets takes a snapshot of the watched Secrets.
func (t *tlsSecrets) setSecrets(s []discovery.TLSSecret) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.secrets = s
	t.pushLocked()
}

func (t *tlsSecrets) pushLocked() {
	t.srv.SetSecretCerts(secretCerts(t.refs, t.secrets))
	t.checkReadyLocked()
}

// checkReadyLocked ends the readiness hold once the configuration is
// settled and every wanted Secret has answered.
func (t *tlsSecrets) checkReadyLocked() {
	if t.release == nil || !t.settled {
		return
	}
	for _, r := range secretRefs(t.refs) {
		if !slices.ContainsFunc(t.secrets, func(s discovery.TLSSecret) bool { return s.Ref == r }) {
			return
		}
	}
	t.release()
	t.release = nil
}

// servedSecrets splits references into those a TLS entrypoint serves (no
// entrypoints named, or one of them is in tlsEPs) and the rest.
func servedSecrets(refs []config.TLSSecret, tlsEPs map[string]bool) (served, ignored []config.TLSSecret) {
	for _, ts := range refs {
		ok := (len(tlsEPs) > 0 && ts.Entrypoints == nil) ||
			slices.ContainsFunc(ts.Entrypoints, func(ep string) bool { return tlsEPs[ep] })
		if ok {
			served = append(served, ts)
		} else {
			ignored = append(ignored, ts)
		}
	}
	return served, ignored
}

// secretRefs returns the distinct Secrets of refs, sorted.
func secretRefs(refs []config.TLSSecret) []discovery.SecretRef {
	out := make([]discovery.SecretRef, 0, len(refs))
	for _, ts := range refs {
		out = append(out, discovery.SecretRef{Namespace: ts.Namespace, Name: ts.Name})
	}
	slices.SortFunc(out, func(a, b discovery.SecretRef) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return slices.Compact(out)
}

// secretCerts pairs each reference with its Secret's certificate, in the
// references' order; references whose Secret has no usable certificate
// are left out (the watcher has logged why).
func secretCerts(refs []config.TLSSecret, secrets []discovery.TLSSecret) []proxy.SecretCert {
	var out []proxy.SecretCert
	for _, ts := range refs {
		i := slices.IndexFunc(secrets, func(s discovery.TLSSecret) bool {
			return s.Ref.Namespace == ts.Namespace && s.Ref.Name == ts.Name
		})
		if i < 0 || secrets[i].Cert == nil {
			continue
		}
		out = append(out, proxy.SecretCert{Secret: ts.String(), Entrypoints: ts.Entrypoints, Hosts: ts.Hosts, Cert: secrets[i].Cert})
	}
	return out
}
