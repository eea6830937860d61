package config_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/latch-proxy/latch/proxy/config"
)

// hostile are seeds shared by the flag fuzzers: unbalanced quotes, arrows
// in quotes, NUL, newline injection, huge values.
var hostile = []string{
	"",
	"->",
	" -> ",
	"PathPrefix(`/socket.io`, `/meta`) -> chat; priority=10; cookie=heyy",
	"PathPrefix(`/x -> chat",
	"Path(\"/x -> chat",
	"Path(\"a\\\"->\") -> chat",
	"Header(`X`, `a->b`) -> chat; cookie=c; cookie-max-age=1h",
	"Path(`/`) -> chat; cookie=heyy\r\nSet-Cookie: evil=1",
	"Path(`/`)\n-> chat\n; strict",
	"Path(`/\x00`) -> chat\x00",
	"\x00=\x00",
	"`",
	"\"\\",
	"Path(`/`) -> chat; priority=-1; priority=1",
	"Path(`/`) -> chat; cookie-secure; cookie=c; cookie-samesite=NONE; cookie-path=/a; cookie-domain=.a.b",
	"x-->chat",
	"chat=127.0.0.1:3001,[::1]:3002",
	"chat=dns://chat:3001",
	"chat=k8s://default/chat-service:http",
	"chat=k8s://:",
	"chat=[::ffff:1.2.3.4]:80",
	"chat=[fe80::1%eth0]:80",
	"web=:8000",
	"web=[::]:8000",
	"web=\n:8000",
	"\xff\xfe=\xff:1",
	strings.Repeat("a", 100<<10),
	strings.Repeat("`", 100<<10),
	strings.Repeat("x", 50<<10) + " -> " + strings.Repeat("y", 50<<10),
	"Path(`/`) -> chat; " + strings.Repeat("cookie-path=/", 10<<10),
}

// checkOneLine asserts the invariants of every error: a single, bounded line.
func checkOneLine(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") {
		t.Fatalf("error spans lines: %q", msg)
	}
	if msg == "" || len(msg) > 1024 {
		t.Fatalf("error of %d bytes: %.200q", len(msg), msg)
	}
}

// checkValid asserts that what a parser returns passes Validate as it is.
func checkValid(t *testing.T, c *config.Config) {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatalf("parsed value does not validate: %v", err)
	}
}

func FuzzParseRoute(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := config.ParseRoute(s)
		checkOneLine(t, err)
		if err != nil {
			return
		}
		if strings.TrimSpace(r.Rule) == "" || r.Service == "" {
			t.Fatalf("empty rule or service from %q: %+v", s, r)
		}
		again, err := config.ParseRoute(r.String())
		if err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("String() %q of %q does not parse back: %+v, %v", r.String(), s, again, err)
		}
		if r.Name == "" {
			r.Name = "route-1"
		}
		checkValid(t, &config.Config{
			Services: []config.Service{{Name: r.Service, Kind: config.DNS, Host: "h", Port: 1}},
			Routes:   []config.Route{r},
		})
	})
}

func FuzzParseService(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		svc, err := config.ParseService(s)
		checkOneLine(t, err)
		if err != nil {
			return
		}
		again, err := config.ParseService(svc.String())
		if err != nil || !reflect.DeepEqual(again, svc) {
			t.Fatalf("String() %q of %q does not parse back: %+v, %v", svc.String(), s, again, err)
		}
		checkValid(t, &config.Config{Services: []config.Service{svc}})
	})
}

func FuzzParseEntrypoint(f *testing.F) {
	for _, s := range hostile {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := config.ParseEntrypoint(s)
		checkOneLine(t, err)
		if err != nil {
			return
		}
		again, err := config.ParseEntrypoint(e.String())
		if err != nil || again != e {
			t.Fatalf("String() %q of %q does not parse back: %+v, %v", e.String(), s, again, err)
		}
		checkValid(t, &config.Config{Entrypoints: []config.Entrypoint{e}})
	})
}

func FuzzParseFile(f *testing.F) {
	for _, name := range []string{"latch.yaml", "seed-ingressroute.yaml", "typo.yaml", "mixed-stream.yaml", "kubectl-list.yaml"} {
		f.Add(readFixture(f, name))
	}
	f.Add([]byte("--- {services: {a: {dns: \"a:1\"}}}\n...\n---\nroutes: [{rule: \"x\", service: a}]"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte(ingressRouteWithTLS("traefik.io", "  namespace: prod\n", "  entryPoints: [websecure]\n", "  tls:\n    secretName: chat-tls\n")))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.ParseFile("f.yaml", data)
		if err != nil {
			var joined interface{ Unwrap() []error }
			if errors.As(err, &joined) {
				for _, e := range joined.Unwrap() {
					if strings.ContainsAny(e.Error(), "\r\n") {
						t.Fatalf("error spans lines: %q", e)
					}
				}
			}
			return
		}
		for _, r := range c.Routes {
			if strings.TrimSpace(r.Rule) == "" || r.Service == "" || r.Name == "" {
				t.Fatalf("incomplete route %+v", r)
			}
		}
	})
}
