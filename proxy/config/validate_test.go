package config_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/latch-proxy/latch/proxy/config"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		flags [3][]string // entrypoints, services, routes
		edit  func(c *config.Config)
		errs  []string
	}{
		{name: "a consistent configuration is valid",
			flags: [3][]string{{"web=:8000", "admin=127.0.0.1:8001"}, {"chat=127.0.0.1:3001"}, {"Path(`/`) -> chat; entrypoints=web"}}},
		{name: "route entrypoints are not checked while none is declared",
			flags: [3][]string{nil, {"chat=127.0.0.1:3001"}, {"Path(`/`) -> chat; entrypoints=web"}}},
		{name: "a route to an unknown service lists the known ones",
			flags: [3][]string{nil, {"chat=127.0.0.1:3001"}, {"Path(`/`) -> caht"}},
			errs:  []string{`route "route-1" references unknown service "caht" (known: chat)`}},
		{name: "a route to an unknown entrypoint lists the known ones",
			flags: [3][]string{{"web=:8000"}, {"chat=127.0.0.1:3001"}, {"Path(`/`) -> chat; entrypoints=websecure"}},
			errs:  []string{`route "route-1" references unknown entrypoint "websecure" (known: web)`}},
		{name: "two entrypoints on one port conflict when one listens everywhere",
			flags: [3][]string{{"web=:8000", "local=127.0.0.1:8000"}, nil, nil},
			errs:  []string{`entrypoints "web" and "local" both listen on "127.0.0.1:8000"`}},
		{name: "every problem is reported, one error each",
			flags: [3][]string{{"web=:8000", "web=:8001"}, {"chat=127.0.0.1:3001", "chat=127.0.0.1:3002"}, {"Path(`/`) -> nope; name=r", "Path(`/`) -> chat; name=r"}},
			errs: []string{
				`entrypoint "web" is declared twice in --entrypoint`,
				`service "chat" is declared twice in --service`,
				`route "r" references unknown service "nope" (known: chat)`,
				`route "r" is declared twice in --route`,
			}},
		{name: "hand-built values are checked field by field",
			edit: func(c *config.Config) {
				c.Services = append(c.Services,
					config.Service{Name: "empty", Kind: config.Static, Origin: "test"},
					config.Service{Name: "kind", Origin: "test"},
					config.Service{Name: "kube", Kind: config.Kubernetes, KubeName: "k", PortName: "http", PortNumber: 80},
					config.Service{Name: "zero", Kind: config.Static, Addrs: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:0")}})
				c.Routes = append(c.Routes,
					config.Route{Rule: "Path(`/`)", Service: "empty", Origin: "test"},
					config.Route{Name: "neg", Rule: "Path(`/`)", Service: "empty", Priority: -1},
					config.Route{Name: "strat", Rule: "Path(`/`)", Service: "empty", Strategy: "RoundRobin"},
					config.Route{Name: "cookie", Rule: "Path(`/`)", Service: "empty", Sticky: &config.Cookie{Name: "c", SameSite: "Lax"}})
			},
			errs: []string{
				`service "empty" has no addresses`,
				`service "kind": unknown source kind SourceKind(0)`,
				`service "kube": expected exactly one of a port name or a port number 1..65535, got "http" and 80`,
				`service "zero": address "10.0.0.1:0": expected ADDR as HOST:PORT (e.g. 127.0.0.1:3001)`,
				"route with rule \"Path(`/`)\" from test has no name",
				`route "neg": priority -1: expected 0 (default) or an integer from 1 to 2147483647`,
				`route "strat": strategy "RoundRobin": expected leastconn, roundrobin or p2c`,
				`route "cookie": cookie sameSite "Lax": expected lax, strict or none`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustFlags(t, tt.flags[0], tt.flags[1], tt.flags[2])
			if tt.edit != nil {
				tt.edit(c)
			}
			err := c.Validate()
			var got []error
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				got = j.Unwrap()
			} else if err != nil {
				got = []error{err}
			}
			if len(got) != len(tt.errs) {
				t.Fatalf("got %d errors, want %d:\n%v", len(got), len(tt.errs), err)
			}
			for i := range got {
				checkErr(t, got[i], tt.errs[i])
			}
		})
	}
}

func TestValidateOfNilIsNil(t *testing.T) {
	var c *config.Config
	if err := c.Validate(); !errors.Is(err, nil) {
		t.Fatal(err)
	}
}
