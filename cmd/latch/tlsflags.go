package main

import (
	"strings"

	"github.com/spf13/pflag"

	"github.com/latch-proxy/latch/proxy"
	"github.com/latch-proxy/latch/proxy/config"
)

// tlsOptions are the flags of TLS entrypoints.
type tlsOptions struct {
	certs     []string
	redirects []string
}

func (o *tlsOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&o.certs, "tls", nil, "serve entrypoint NAME over TLS: NAME=CERT,KEY with PEM files (repeatable; chosen by SNI; reloaded when the files change), "+
		"or NAME alone for certificates from cluster Secrets only. Every TLS entrypoint also serves, after its files, the kubernetes.io/tls Secrets "+
		"that IngressRoutes (spec.tls.secretName) and Ingresses (spec.tls) name; reading them needs --providers and the opt-in Role of manifests/latch-tls-secrets-rbac.yaml")
	fs.StringArrayVar(&o.redirects, "redirect-https", nil, "answer every request on entrypoint FROM with a 308 to TLS entrypoint TO: FROM=TO")
}

// parse checks the flags against the entrypoints; acme names the --acme
// entrypoint, which may be a redirect target without --tls files; cluster
// says whether latch reads the cluster, without which --tls NAME alone
// could never serve a certificate. In the result, every TLS entrypoint is
// a key; one with no files serves certificates from Secrets only.
func (o *tlsOptions) parse(eps []config.Entrypoint, acme string, cluster bool) (map[string][]proxy.CertFiles, map[string]string, error) {
	known := map[string]bool{}
	for _, ep := range eps {
		known[ep.Name] = true
	}
	certs := map[string][]proxy.CertFiles{}
	for _, v := range o.certs {
		name, files, ok := strings.Cut(v, "=")
		cert, key, ok2 := strings.Cut(files, ",")
		if ok && (!ok2 || name == "" || cert == "" || key == "" || strings.Contains(key, ",")) || name == "" {
			return nil, nil, usagef("--tls: %q: expected NAME=CERT,KEY (e.g. websecure=/etc/latch/tls.crt,/etc/latch/tls.key), or NAME alone for certificates from cluster Secrets", v)
		}
		if !known[name] {
			return nil, nil, usagef("--tls: %q: no entrypoint named %q (declare it with --entrypoint %s=:4443)", v, name, name)
		}
		if !ok {
			if !cluster {
				return nil, nil, usagef("--tls: %q: an entrypoint without certificate files serves only the TLS Secrets that cluster routes name, so it needs --providers ingressroute or ingress; or give NAME=CERT,KEY", v)
			}
			if _, dup := certs[name]; !dup {
				certs[name] = nil
			}
			continue
		}
		certs[name] = append(certs[name], proxy.CertFiles{Cert: cert, Key: key})
	}
	redirects := map[string]string{}
	for _, v := range o.redirects {
		from, to, ok := strings.Cut(v, "=")
		switch {
		case !ok || from == "" || to == "":
			return nil, nil, usagef("--redirect-https: %q: expected FROM=TO entrypoint names (e.g. web=websecure)", v)
		case !known[from] || !known[to]:
			return nil, nil, usagef("--redirect-https: %q: both must be declared entrypoints", v)
		case !hasKey(certs, to) && to != acme:
			return nil, nil, usagef("--redirect-https: %q: entrypoint %q has no --tls certificate and is not the --acme one", v, to)
		}
		redirects[from] = to
	}
	return certs, redirects, nil
}

func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}
