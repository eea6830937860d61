package config_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/latch-proxy/latch/proxy/config"
)

// ingressRouteWithTLS is an IngressRoute of group with the given metadata
// namespace line, entryPoints and tls block (YAML, indented under spec).
func ingressRouteWithTLS(group, namespace, entrypoints, tls string) string {
	return "apiVersion: " + group + "/v1alpha1\nkind: IngressRoute\nmetadata:\n  name: secure\n" + namespace +
		"spec:\n" + entrypoints +
		"  routes:\n    - match: Host(`chat.example`)\n      kind: Rule\n      services:\n        - name: chat\n          port: 80\n" +
		tls
}

func TestIngressRouteTLSSecrets(t *testing.T) {
	for _, tc := range []struct {
		name, group, namespace, entrypoints, tls string
		want                                     []config.TLSSecret
		wantErr                                  string
	}{
		{
			name:  "secretName of a traefik.io route names a Secret in the route's namespace, for its entrypoints",
			group: "traefik.io", namespace: "  namespace: prod\n", entrypoints: "  entryPoints: [websecure]\n",
			tls:  "  tls:\n    secretName: chat-tls\n",
			want: []config.TLSSecret{{Namespace: "prod", Name: "chat-tls", Entrypoints: []string{"websecure"}, Origin: "f.yaml (IngressRoute prod/secure)"}},
		},
		{
			name:  "secretName of a traefik.containo.us route without namespace or entrypoints is in default, for every entrypoint",
			group: "traefik.containo.us",
			tls:   "  tls:\n    secretName: chat.example.tls\n",
			want:  []config.TLSSecret{{Namespace: "default", Name: "chat.example.tls", Origin: "f.yaml (IngressRoute default/secure)"}},
		},
		{
			name:  "options, store, certResolver and domains are read and ignored",
			group: "traefik.io",
			tls: "  tls:\n    secretName: chat-tls\n    options: {name: modern}\n    store: {name: default}\n    certResolver: le\n" +
				"    domains: [{main: chat.example, sans: [www.chat.example]}]\n",
			want: []config.TLSSecret{{Namespace: "default", Name: "chat-tls", Origin: "f.yaml (IngressRoute default/secure)"}},
		},
		{
			name:  "a tls block without secretName names no Secret",
			group: "traefik.io", tls: "  tls: {certResolver: le}\n",
		},
		{
			name: "a route without tls names no Secret", group: "traefik.io",
		},
		{
			name:  "a secretName that is no Secret name is refused by object",
			group: "traefik.io", tls: "  tls:\n    secretName: Chat_TLS\n",
			wantErr: `f.yaml: IngressRoute "default/secure": tls.secretName "Chat_TLS": expected a DNS subdomain`,
		},
		{
			name:  "an unknown field under tls is refused",
			group: "traefik.io", tls: "  tls:\n    secret: chat-tls\n",
			wantErr: `unknown field "secret"`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.ParseFile("f.yaml", []byte(ingressRouteWithTLS(tc.group, tc.namespace, tc.entrypoints, tc.tls)))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v; want one containing %q", err, tc.wantErr)
				}
				checkOneLineJoined(t, err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.TLSSecrets, tc.want) {
				t.Fatalf("TLSSecrets = %+v; want %+v", cfg.TLSSecrets, tc.want)
			}
		})
	}
}

func TestIngressTLSSecrets(t *testing.T) {
	const head = `{"metadata":{"name":"web","namespace":"shop"},"spec":{"ingressClassName":"latch",` +
		`"defaultBackend":{"service":{"name":"a","port":{"number":80}}},"tls":`
	for _, tc := range []struct {
		name, tls string
		want      []config.TLSSecret
		wantErr   string
	}{
		{
			name: "each tls entry names a Secret in the Ingress's namespace with its hosts, lower-cased",
			tls:  `[{"hosts":["Shop.example","*.shop.example"],"secretName":"shop-tls"},{"secretName":"other-tls"}]`,
			want: []config.TLSSecret{
				{Namespace: "shop", Name: "shop-tls", Hosts: []string{"shop.example", "*.shop.example"}, Origin: "ingress shop/web"},
				{Namespace: "shop", Name: "other-tls", Origin: "ingress shop/web"},
			},
		},
		{
			name: "a tls entry without secretName is skipped",
			tls:  `[{"hosts":["shop.example"]}]`,
		},
		{
			name:    "a host that is no host name is refused by index",
			tls:     `[{"hosts":["shop.example","bad host"],"secretName":"shop-tls"}]`,
			wantErr: `ingress shop/web: tls[0].hosts[1] "bad host": expected a host name`,
		},
		{
			name:    "a secretName that is no Secret name is refused by index",
			tls:     `[{"secretName":"ok"},{"secretName":"-bad"}]`,
			wantErr: `ingress shop/web: tls[1].secretName "-bad": expected a DNS subdomain`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.ParseIngress([]byte(head+tc.tls+"}}"), "latch")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v; want one containing %q", err, tc.wantErr)
				}
				checkOneLine(t, err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.TLSSecrets, tc.want) {
				t.Fatalf("TLSSecrets = %+v; want %+v", cfg.TLSSecrets, tc.want)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatalf("the parsed Ingress does not validate: %v", err)
			}
		})
	}

	t.Run("an Ingress of another class names no Secret", func(t *testing.T) {
		cfg, err := config.ParseIngress([]byte(`{"metadata":{"name":"x"},"spec":{"ingressClassName":"nginx","tls":[{"secretName":"s"}]}}`), "latch")
		if err != nil || len(cfg.TLSSecrets) != 0 {
			t.Fatalf("got %+v, %v; want no TLS secrets", cfg, err)
		}
	})
}

func TestTLSSecretsMergeValidateClone(t *testing.T) {
	ref := func(ns, name string, eps ...string) config.TLSSecret {
		return config.TLSSecret{Namespace: ns, Name: name, Entrypoints: eps, Origin: "test"}
	}
	web := config.Entrypoint{Name: "websecure", Addr: ":4443", Origin: "test"}

	t.Run("merge keeps every reference in order, also two of one Secret", func(t *testing.T) {
		a := &config.Config{TLSSecrets: []config.TLSSecret{ref("a", "s")}}
		b := &config.Config{TLSSecrets: []config.TLSSecret{ref("a", "s", "websecure"), ref("b", "t")}}
		got, err := config.Merge(a, nil, b)
		if err != nil {
			t.Fatal(err)
		}
		want := []config.TLSSecret{ref("a", "s"), ref("a", "s", "websecure"), ref("b", "t")}
		if !reflect.DeepEqual(got.TLSSecrets, want) {
			t.Fatalf("merged %+v; want %+v", got.TLSSecrets, want)
		}
		got.TLSSecrets[1].Entrypoints[0] = "changed"
		if b.TLSSecrets[0].Entrypoints[0] != "websecure" {
			t.Fatal("changing the merge changed its part")
		}
	})

	t.Run("clone copies hosts and entrypoints", func(t *testing.T) {
		c := &config.Config{TLSSecrets: []config.TLSSecret{{Namespace: "a", Name: "s", Hosts: []string{"h.example"}, Entrypoints: []string{"websecure"}}}}
		d := c.Clone()
		d.TLSSecrets[0].Hosts[0], d.TLSSecrets[0].Entrypoints[0] = "x", "y"
		if c.TLSSecrets[0].Hosts[0] != "h.example" || c.TLSSecrets[0].Entrypoints[0] != "websecure" {
			t.Fatal("changing a clone changed the original")
		}
	})

	for _, tc := range []struct {
		name    string
		ts      config.TLSSecret
		wantErr string
	}{
		{"a reference to a declared entrypoint validates", ref("a", "s", "websecure"), ""},
		{"a reference to an unknown entrypoint is refused", ref("a", "s", "web2"), `TLS secret "a/s" of test references unknown entrypoint "web2" (known: websecure)`},
		{"a reference without namespace is refused", ref("", "s"), `TLS secret of test: namespace "": expected lower-case letters`},
		{"a bad host is refused", config.TLSSecret{Namespace: "a", Name: "s", Hosts: []string{"*"}, Origin: "test"}, `TLS secret "a/s" of test: host "*": expected a host name, or *. and a host name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &config.Config{Entrypoints: []config.Entrypoint{web}, TLSSecrets: []config.TLSSecret{tc.ts}}
			err := c.Validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v; want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// checkOneLineJoined asserts that every error of a join is one line.
func checkOneLineJoined(t *testing.T, err error) {
	t.Helper()
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			checkOneLine(t, e)
		}
		return
	}
	checkOneLine(t, err)
}
