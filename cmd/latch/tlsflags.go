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
	fs.StringArrayVar(&o.certs, "tls", nil, "serve entrypoint NAME over TLS with a PEM certificate and key: NAME=CERT,KEY (repeatable; several per entrypoint are chosen by SNI; reloaded when the files change)")
	fs.StringArrayVar(&o.redirects, "redirect-https", nil, "answer every request on entrypoint FROM with a 308 to TLS entrypoint TO: FROM=TO")
}

// parse checks the flags against the entrypoints.
func (o *tlsOptions) parse(eps []config.Entrypoint) (map[string][]proxy.CertFiles, map[string]string, error) {
	known := map[string]bool{}
	for _, ep := range eps {
		known[ep.Name] = true
	}
	certs := map[string][]proxy.CertFiles{}
	for _, v := range o.certs {
		name, files, ok := strings.Cut(v, "=")
		cert, key, ok2 := strings.Cut(files, ",")
		if !ok || !ok2 || name == "" || cert == "" || key == "" || strings.Contains(key, ",") {
			return nil, nil, usagef("--tls: %q: expected NAME=CERT,KEY (e.g. websecure=/etc/latch/tls.crt,/etc/latch/tls.key)", v)
		}
		if !known[name] {
			return nil, nil, usagef("--tls: %q: no entrypoint named %q (declare it with --entrypoint %s=:4443)", v, name, name)
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
		case len(certs[to]) == 0:
			return nil, nil, usagef("--redirect-https: %q: entrypoint %q has no --tls certificate", v, to)
		}
		redirects[from] = to
	}
	return certs, redirects, nil
}
