package config_test

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/latch-proxy/latch/proxy/config"
)

func mustFlags(t *testing.T, eps, svcs, routes []string) *config.Config {
	t.Helper()
	c, err := config.FromFlags(eps, svcs, routes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFromFlagsNamesRoutesByPosition(t *testing.T) {
	c := mustFlags(t, []string{"web=:8000"}, []string{"chat=127.0.0.1:3001"}, []string{
		"Path(`/a`) -> chat",
		"Path(`/b`) -> chat; name=bee",
		"Path(`/c`) -> chat",
	})
	var names []string
	for _, r := range c.Routes {
		names = append(names, r.Name)
	}
	if want := []string{"route-1", "bee", "route-3"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("names %q, want %q", names, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestFromFlagsPrefixesEveryErrorWithItsFlag(t *testing.T) {
	_, err := config.FromFlags([]string{"web"}, []string{"chat=x"}, []string{"nope"})
	want := "--entrypoint: \"web\": expected NAME=ADDR (e.g. web=:8000)\n" +
		"--service: \"chat=x\": expected ADDR as HOST:PORT (e.g. 127.0.0.1:3001)\n" +
		"--route: \"nope\": expected 'RULE -> SERVICE[; key=value ...]'"
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
}

func TestMerge(t *testing.T) {
	flags := func(t *testing.T) *config.Config {
		return mustFlags(t, []string{"web=:8000"}, []string{"chat-service=127.0.0.1:3001"}, []string{"Path(`/`) -> chat-service"})
	}
	seed := func(t *testing.T) *config.Config {
		c, err := config.ParseFile("seed.yaml", readFixture(t, "seed-ingressroute.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name  string
		parts func(t *testing.T) []*config.Config
		err   string
		check func(t *testing.T, c *config.Config)
	}{
		{name: "a declared service replaces the one an IngressRoute implies, wherever it comes",
			parts: func(t *testing.T) []*config.Config { return []*config.Config{seed(t), nil, flags(t)} },
			check: func(t *testing.T, c *config.Config) {
				if len(c.Services) != 1 || c.Services[0].String() != "chat-service=127.0.0.1:3001" || c.Services[0].Implied {
					t.Fatalf("services %+v", c.Services)
				}
				if len(c.Routes) != 2 || c.Routes[0].Name != "default/chat-svc-route#0" || c.Routes[1].Name != "route-1" {
					t.Fatalf("routes %+v", c.Routes)
				}
				if err := c.Validate(); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "the same implied service twice collapses",
			parts: func(t *testing.T) []*config.Config { return []*config.Config{seed(t), {Services: seed(t).Services}} },
			check: func(t *testing.T, c *config.Config) {
				if len(c.Services) != 1 {
					t.Fatalf("services %+v", c.Services)
				}
			}},
		{name: "implied services that differ are an error naming both",
			parts: func(t *testing.T) []*config.Config {
				other := seed(t)
				other.Routes = nil
				other.Services[0].PortNumber = 80
				other.Services[0].Origin = "other.yaml (implied by IngressRoute default/x)"
				return []*config.Config{seed(t), other}
			},
			err: `service "chat-service" is implied with two different targets: k8s://default/chat-service:3001 by seed.yaml (implied by IngressRoute default/chat-svc-route) and k8s://default/chat-service:80 by other.yaml (implied by IngressRoute default/x) (declare it with --service or in a file to choose)`},
		{name: "a service declared by flags and a file is an error naming both",
			parts: func(t *testing.T) []*config.Config {
				f, err := config.ParseFile("latch.yaml", []byte("services: {chat-service: {dns: \"chat:3001\"}}"))
				if err != nil {
					t.Fatal(err)
				}
				return []*config.Config{flags(t), f}
			},
			err: `service "chat-service" is declared twice: in --service and in latch.yaml`},
		{name: "an entrypoint declared by flags and a file is an error naming both",
			parts: func(t *testing.T) []*config.Config {
				f, err := config.ParseFile("latch.yaml", []byte("entrypoints: {web: \":9000\"}"))
				if err != nil {
					t.Fatal(err)
				}
				return []*config.Config{flags(t), f}
			},
			err: `entrypoint "web" is declared twice: in --entrypoint and in latch.yaml`},
		{name: "a route name used twice is an error naming both",
			parts: func(t *testing.T) []*config.Config {
				f, err := config.ParseFile("latch.yaml", []byte("routes: [{name: route-1, rule: Path(`/`), service: chat-service}]"))
				if err != nil {
					t.Fatal(err)
				}
				return []*config.Config{flags(t), f}
			},
			err: `route "route-1" is declared twice: in --route and in latch.yaml`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := tt.parts(t)
			before := make([]*config.Config, len(parts))
			for i, p := range parts {
				before[i] = p.Clone()
			}
			c, err := config.Merge(parts...)
			checkErr(t, err, tt.err)
			if !reflect.DeepEqual(parts, before) {
				t.Fatal("Merge modified its parts")
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestMergeResultDoesNotShareMemoryWithParts(t *testing.T) {
	part := mustFlags(t, nil, []string{"chat=127.0.0.1:1"}, []string{"Path(`/`) -> chat; entrypoints=web; cookie=c"})
	c, err := config.Merge(part)
	if err != nil {
		t.Fatal(err)
	}
	c.Services[0].Addrs[0] = netip.AddrPortFrom(c.Services[0].Addrs[0].Addr(), 2)
	c.Routes[0].Entrypoints[0] = "x"
	c.Routes[0].Sticky.Name = "x"
	if part.Services[0].Addrs[0].Port() != 1 || part.Routes[0].Entrypoints[0] != "web" || part.Routes[0].Sticky.Name != "c" {
		t.Fatal("the merged config aliases its part")
	}
}
