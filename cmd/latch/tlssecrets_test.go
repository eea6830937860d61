package main

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"reflect"
	"testing"

	"github.com/latch-proxy/latch/discovery"
	"github.com/latch-proxy/latch/proxy"
	"github.com/latch-proxy/latch/proxy/config"
)

func TestServedSecrets(t *testing.T) {
	ref := func(name string, eps ...string) config.TLSSecret {
		return config.TLSSecret{Namespace: "ns", Name: name, Entrypoints: eps, Origin: "test"}
	}
	for _, tc := range []struct {
		name          string
		tlsEPs        map[string]bool
		refs          []config.TLSSecret
		served, other []string
	}{
		{"a reference without entrypoints is served when any entrypoint speaks TLS", map[string]bool{"websecure": true},
			[]config.TLSSecret{ref("a")}, []string{"a"}, nil},
		{"a reference without entrypoints is ignored when none speaks TLS", map[string]bool{},
			[]config.TLSSecret{ref("a")}, nil, []string{"a"}},
		{"a reference naming a TLS entrypoint among others is served", map[string]bool{"websecure": true},
			[]config.TLSSecret{ref("a", "web", "websecure")}, []string{"a"}, nil},
		{"a reference naming only plain entrypoints is ignored", map[string]bool{"websecure": true},
			[]config.TLSSecret{ref("a", "web"), ref("b", "websecure")}, []string{"b"}, []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			served, ignored := servedSecrets(tc.refs, tc.tlsEPs)
			names := func(ts []config.TLSSecret) []string {
				var out []string
				for _, x := range ts {
					out = append(out, x.Name)
				}
				return out
			}
			if !reflect.DeepEqual(names(served), tc.served) || !reflect.DeepEqual(names(ignored), tc.other) {
				t.Fatalf("served %v, ignored %v; want %v and %v", names(served), names(ignored), tc.served, tc.other)
			}
		})
	}
}

type recordedCerts struct{ last []proxy.SecretCert }

func (r *recordedCerts) SetSecretCerts(c []proxy.SecretCert) { r.last = c }

func TestTLSSecretsPairsReferencesWithCertificatesAndHoldsReadiness(t *testing.T) {
	a, b := &tls.Certificate{}, &tls.Certificate{}
	srv := &recordedCerts{}
	ts := newTLSSecrets(map[string][]proxy.CertFiles{"websecure": nil}, discovery.NewSecretWatcher(nil, slog.New(slog.DiscardHandler)), srv, slog.New(slog.DiscardHandler))
	released := 0
	ts.release = func() { released++ }

	cfg := &config.Config{TLSSecrets: []config.TLSSecret{
		{Namespace: "ns", Name: "a", Origin: "ir"},
		{Namespace: "ns", Name: "b", Hosts: []string{"b.example"}, Origin: "ing"},
		{Namespace: "ns", Name: "a", Entrypoints: []string{"websecure"}, Origin: "ir2"},
		{Namespace: "ns", Name: "missing", Origin: "ing"},
	}}
	ts.setConfig(cfg)
	ts.settle()
	if released != 0 {
		t.Fatal("readiness released before any Secret answered")
	}
	ts.setSecrets([]discovery.TLSSecret{
		{Ref: discovery.SecretRef{Namespace: "ns", Name: "a"}, Cert: a},
		{Ref: discovery.SecretRef{Namespace: "ns", Name: "b"}, Cert: b},
	})
	if released != 0 {
		t.Fatal("readiness released while ns/missing has not answered")
	}
	ts.setSecrets([]discovery.TLSSecret{
		{Ref: discovery.SecretRef{Namespace: "ns", Name: "a"}, Cert: a},
		{Ref: discovery.SecretRef{Namespace: "ns", Name: "b"}, Cert: b},
		{Ref: discovery.SecretRef{Namespace: "ns", Name: "missing"}, Err: discovery.ErrSecretNotFound},
	})
	if released != 1 {
		t.Fatalf("readiness released %d times once every Secret answered; want 1", released)
	}
	want := []proxy.SecretCert{
		{Secret: "ns/a", Cert: a},
		{Secret: "ns/b", Hosts: []string{"b.example"}, Cert: b},
		{Secret: "ns/a", Entrypoints: []string{"websecure"}, Cert: a},
	}
	if !reflect.DeepEqual(srv.last, want) {
		t.Fatalf("certificates %+v; want %+v", srv.last, want)
	}

	ts.setSecrets([]discovery.TLSSecret{{Ref: discovery.SecretRef{Namespace: "ns", Name: "b"}, Cert: b, Err: errors.New("bad update")}})
	if len(srv.last) != 1 || srv.last[0].Cert != b {
		t.Fatalf("certificates %+v; want only b's last good one", srv.last)
	}
	ts.setConfig(&config.Config{})
	if len(srv.last) != 0 {
		t.Fatalf("certificates %+v after no route names a Secret; want none", srv.last)
	}
}
