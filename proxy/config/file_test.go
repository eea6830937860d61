package config_test

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/latch-proxy/latch/proxy/config"
)

func TestParseFileReadsTheSeedIngressRouteAsOneStickyRoute(t *testing.T) {
	c, err := config.ParseFile("seed-ingressroute.yaml", readFixture(t, "seed-ingressroute.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := &config.Config{
		Services: []config.Service{{
			Name: "chat-service", Kind: config.Kubernetes, Namespace: "default", KubeName: "chat-service", PortNumber: 3001,
			Origin: "seed-ingressroute.yaml (implied by IngressRoute default/chat-svc-route)", Implied: true,
		}},
		Routes: []config.Route{{
			Name:        "default/chat-svc-route#0",
			Rule:        "PathPrefix(`/socket.io`, `/meta`)",
			Priority:    10,
			Entrypoints: []string{"web"},
			Service:     "chat-service",
			Sticky:      &config.Cookie{Name: "heyy", HTTPOnly: true, Path: "/"},
			Origin:      "seed-ingressroute.yaml (IngressRoute default/chat-svc-route)",
		}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got  %+v\nwant %+v", c, want)
	}
	if got := c.Services[0].Source(); got != "k8s://default/chat-service:3001" {
		t.Errorf("implied source = %q", got)
	}
	c.Entrypoints = append(c.Entrypoints, config.DefaultEntrypoint())
	if err := c.Validate(); err != nil {
		t.Fatalf("seed with the default entrypoint does not validate: %v", err)
	}
}

func TestParseFileReadsTheDocumentedExample(t *testing.T) {
	c, err := config.ParseFile("latch.yaml", readFixture(t, "latch.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := &config.Config{
		Entrypoints: []config.Entrypoint{
			{Name: "internal", Addr: "127.0.0.1:8001", Origin: "latch.yaml"},
			{Name: "web", Addr: ":8000", Origin: "latch.yaml"},
		},
		Services: []config.Service{
			{Name: "chat", Kind: config.Static, Addrs: []netip.AddrPort{
				netip.MustParseAddrPort("127.0.0.1:3001"), netip.MustParseAddrPort("127.0.0.1:3002")}, Origin: "latch.yaml"},
			{Name: "chat-compose", Kind: config.DNS, Host: "chat", Port: 3001, Origin: "latch.yaml"},
			{Name: "chat-kube", Kind: config.Kubernetes, Namespace: "default", KubeName: "chat-service", PortName: "web", Origin: "latch.yaml"},
		},
		Routes: []config.Route{
			{Name: "socketio", Rule: "PathPrefix(`/socket.io`, `/meta`)", Priority: 10, Entrypoints: []string{"web"},
				Service: "chat", Strategy: config.StrategyLeastConn, Origin: "latch.yaml",
				Sticky: &config.Cookie{Name: "heyy", HTTPOnly: true, SameSite: config.SameSiteLax, MaxAge: time.Hour, Path: "/"}},
			{Name: "static", Rule: "PathPrefix(`/`)", Service: "chat", Strategy: config.StrategyRoundRobin, Origin: "latch.yaml"},
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got  %+v\nwant %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParseFileMixesKubernetesObjectsAndLatchDocuments(t *testing.T) {
	c, err := config.ParseFile("mixed-stream.yaml", readFixture(t, "mixed-stream.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range c.Services {
		got = append(got, s.String())
	}
	// chat-service is declared by the latch document and replaces the
	// implied one; chat-web stays implied, in the IngressRoute's namespace.
	if want := []string{"chat-web=k8s://prod/chat-web:http", "chat-service=127.0.0.1:3001,127.0.0.1:3002"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("services %q, want %q", got, want)
	}
	if len(c.Routes) != 2 {
		t.Fatalf("%d routes, want 2", len(c.Routes))
	}
	r := c.Routes[0]
	wantCookie := &config.Cookie{Name: "heyy", Secure: true, HTTPOnly: false, SameSite: config.SameSiteNone, MaxAge: 10 * time.Minute, Path: "/"}
	if r.Name != "prod/chat#0" || r.Strategy != config.StrategyRoundRobin || !reflect.DeepEqual(r.Sticky, wantCookie) {
		t.Fatalf("route 0 = %+v, sticky %+v", r, r.Sticky)
	}
	if c.Routes[1].Name != "prod/chat#1" || c.Routes[1].Sticky != nil {
		t.Fatalf("route 1 = %+v", c.Routes[1])
	}
}

func TestParseFileReadsKubectlLists(t *testing.T) {
	c, err := config.ParseFile("kubectl-list.yaml", readFixture(t, "kubectl-list.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Routes) != 1 || c.Routes[0].String() != "PathPrefix(`/a`) -> svc-a; name=default/a#0" {
		t.Fatalf("routes %+v", c.Routes)
	}
	if len(c.Services) != 1 || c.Services[0].String() != "svc-a=k8s://default/svc-a:80" {
		t.Fatalf("services %+v", c.Services)
	}
}

func TestParseFileNamesATypoAndItsLine(t *testing.T) {
	_, err := config.ParseFile("typo.yaml", readFixture(t, "typo.yaml"))
	checkErr(t, err, `typo.yaml: line 7: unknown field "prioriy"`)
}

func TestParseFileDocuments(t *testing.T) {
	const ir = "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: {name: r}\nspec:\n  routes:\n"
	tests := []struct{ name, yaml, err string }{
		{name: "an empty file is an empty configuration", yaml: "# nothing yet\n"},
		{name: "other kinds of objects are ignored",
			yaml: "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: 2}\n"},
		{name: "unknown keys inside an IngressRoute are errors",
			yaml: ir + "    - match: Path(`/`)\n      servics: [{name: a, port: 80}]\n",
			err:  `f.yaml: line 7: unknown field "servics"`},
		{name: "several weighted services are not supported",
			yaml: ir + "    - match: Path(`/`)\n      services: [{name: a, port: 80, weight: 1}, {name: b, port: 80, weight: 1}]\n",
			err:  `f.yaml: IngressRoute "default/r": routes[0]: 2 services: weighted services are not supported yet (use one service per route)`},
		{name: "middlewares are not silently dropped",
			yaml: ir + "    - match: Path(`/`)\n      middlewares: [{name: auth}]\n      services: [{name: a, port: 80}]\n",
			err:  `f.yaml: IngressRoute "default/r": routes[0]: middlewares are not supported (latch would serve the route without them)`},
		{name: "an IngressRoute service needs a port",
			yaml: ir + "    - match: Path(`/`)\n      services: [{name: a}]\n",
			err:  `f.yaml: IngressRoute "default/r": routes[0]: service "a" has no port`},
		{name: "a TraefikService is not supported",
			yaml: ir + "    - match: Path(`/`)\n      services: [{name: a, kind: TraefikService}]\n",
			err:  `f.yaml: IngressRoute "default/r": routes[0]: service kind "TraefikService" is not supported (expected Service)`},
		{name: "a negative Traefik maxAge is rejected",
			yaml: ir + "    - match: Path(`/`)\n      services: [{name: a, port: 80, sticky: {cookie: {maxAge: -1}}}]\n",
			err:  `f.yaml: IngressRoute "default/r": routes[0]: sticky.cookie: maxAge "-1": expected a whole number of seconds, 0 or more`},
		{name: "an unknown IngressRoute version is an error",
			yaml: "apiVersion: traefik.io/v1beta1\nkind: IngressRoute\nmetadata: {name: r}\n",
			err:  `f.yaml: apiVersion "traefik.io/v1beta1" of kind IngressRoute: expected traefik.io/v1alpha1 or traefik.containo.us/v1alpha1`},
		{name: "TCP routes are an error rather than ignored",
			yaml: "apiVersion: traefik.io/v1alpha1\nkind: IngressRouteTCP\nmetadata: {name: r}\n",
			err:  `f.yaml: kind IngressRouteTCP is not supported (latch routes HTTP: use kind IngressRoute)`},
		{name: "a kind without apiVersion is an error",
			yaml: "kind: IngressRoute\nmetadata: {name: r}\n",
			err:  `f.yaml: kind "IngressRoute" has no apiVersion`},
		{name: "a YAML syntax error in a later document reports the file's line",
			yaml: "services: {}\n---\nroutes:\n  - name: a\n   rule: x\n",
			err:  `f.yaml: line 4: did not find expected '-' indicator`},
		{name: "a wrong type names the field",
			yaml: "routes:\n  - rule: Path(`/`)\n    service: a\n    priority: ten\n",
			err:  `f.yaml: line 4: field "routes.priority": expected an integer, got string`},
		{name: "a duplicate key is an error",
			yaml: "services:\n  a: {dns: \"a:80\"}\n  a: {dns: \"b:80\"}\n",
			err:  `f.yaml: line 3: key "a" already set in map`},
		{name: "a service needs exactly one source",
			yaml: "services:\n  a: {dns: \"a:80\", servers: [\"127.0.0.1:80\"]}\n",
			err:  `f.yaml: service "a": expected exactly one of servers, dns or kubernetes`},
		{name: "a bad server address names the service and the address",
			yaml: "services:\n  a: {servers: [\"127.0.0.1\"]}\n",
			err:  `f.yaml: service "a": servers: address "127.0.0.1": expected ADDR as HOST:PORT (e.g. 127.0.0.1:3001)`},
		{name: "a file route needs a rule",
			yaml: "routes:\n  - service: a\n",
			err:  `f.yaml: route "f.yaml#0": rule is missing`},
		{name: "sticky without a cookie is an error",
			yaml: "routes:\n  - {rule: Path(`/`), service: a, sticky: {}}\n",
			err:  `f.yaml: route "f.yaml#0": sticky needs cookie (sticky: {cookie: {name: NAME}})`},
		{name: "a list document is not a configuration",
			yaml: "- a\n- b\n",
			err:  `f.yaml: expected a mapping with entrypoints, services and routes, or a Kubernetes object`},
		{name: "a later document is located by its first line",
			yaml: "services: {}\n---\nroutes:\n  - {rule: Path(`/`)}\n",
			err:  `f.yaml: document at line 3: route "f.yaml#0": service is missing`},
		{name: "an entrypoint address needs a colon",
			yaml: "entrypoints: {web: 8000}\n",
			err:  `f.yaml: entrypoint "web": address "8000": expected [HOST]:PORT (e.g. :8000, 127.0.0.1:8000 or [::1]:8000)`},
		{name: "a List inside a List is not supported",
			yaml: "apiVersion: v1\nkind: List\nitems:\n  - {apiVersion: v1, kind: List, items: []}\n",
			err:  `f.yaml: items[0]: a List inside a List is not supported`},
		{name: "a partitioned Traefik cookie is not supported",
			yaml: ir + "    - match: Path(`/`)\n      services: [{name: a, port: 80, sticky: {cookie: {name: c, partitioned: true}}}]\n",
			err:  `f.yaml: IngressRoute "default/r": routes[0]: sticky.cookie.partitioned is not supported`},
		{name: "a maxAge that is no duration is rejected",
			yaml: "routes:\n  - {rule: Path(`/`), service: a, sticky: {cookie: {name: c, maxAge: soon}}}\n",
			err:  `f.yaml: route "f.yaml#0": maxAge "soon": expected a duration such as 1h or a number of seconds`},
		{name: "two documents declaring one service are an error naming both",
			yaml: "services: {a: {dns: \"a:80\"}}\n---\nservices: {a: {dns: \"b:80\"}}\n",
			err:  `service "a" is declared twice in f.yaml`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.ParseFile("f.yaml", []byte(tt.yaml))
			checkErr(t, err, tt.err)
			if err == nil && c == nil {
				t.Fatal("nil config without error")
			}
		})
	}
}

func TestParseFileReportsEveryBadDocument(t *testing.T) {
	_, err := config.ParseFile("f.yaml", []byte("routes: 1\n---\nservices: 2\n"))
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) || len(joined.Unwrap()) != 2 {
		t.Fatalf("want two errors, got %v", err)
	}
	for _, e := range joined.Unwrap() {
		if strings.ContainsAny(e.Error(), "\n\r") || !strings.HasPrefix(e.Error(), "f.yaml: ") {
			t.Errorf("bad error %q", e)
		}
	}
}

func TestParseFileDerivesACookieNameWhenNoneIsGiven(t *testing.T) {
	c, err := config.ParseFile("f.yaml", []byte("routes:\n  - {rule: Path(`/`), service: a, sticky: {cookie: {}}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := config.ParseFile("f.yaml", []byte("routes:\n  - {rule: Path(`/`), service: a, sticky: {cookie: {}}}\n"))
	name := c.Routes[0].Sticky.Name
	if len(name) != 7 || name[0] != '_' || again.Routes[0].Sticky.Name != name {
		t.Fatalf("derived cookie name %q is not stable or not _ and 6 hex digits", name)
	}
}

func TestParseFileNamesUnnamedRoutesAfterTheFile(t *testing.T) {
	tests := []struct{ file, want string }{
		{"/etc/latch/latch.yaml", "latch.yaml#1"},
		{"my routes.yaml", "my_routes.yaml#1"},
		{".hidden.yaml", "file.hidden.yaml#1"},
	}
	doc := []byte("routes:\n  - {name: first, rule: Path(`/a`), service: a}\n  - {rule: Path(`/b`), service: a, sticky: {cookie: {name: c, maxAge: 2h}}}\n")
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c, err := config.ParseFile(tt.file, doc)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Routes[1].Name; got != tt.want {
				t.Fatalf("name %q, want %q", got, tt.want)
			}
			if got := c.Routes[1].Sticky.MaxAge; got != 2*time.Hour {
				t.Fatalf("maxAge %v, want 2h", got)
			}
		})
	}
}

func TestParseFileQuotesAFileNameWithANewline(t *testing.T) {
	_, err := config.ParseFile("a\nb.yaml", []byte("routes: 1"))
	if err == nil || strings.ContainsAny(err.Error(), "\n") {
		t.Fatalf("error %q", err)
	}
}

func TestParseFileSplitsDocumentsAtMarkers(t *testing.T) {
	tests := []struct{ name, yaml string }{
		{"content may follow the marker", "--- {services: {a: {dns: \"a:1\"}}}\n--- # routes\nroutes: [{rule: Path(`/`), service: a}]\n"},
		{"CRLF line ends and an end marker", "services:\r\n  a: {dns: \"a:1\"}\r\n...\r\n---\r\nroutes: [{rule: Path(`/`), service: a}]\r\n"},
		{"a marker ends a block scalar", "routes:\n  - service: a\n    rule: |\n      Path(`/`)\n---\nservices: {a: {dns: \"a:1\"}}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := config.ParseFile("f.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Services) != 1 || len(c.Routes) != 1 || c.Routes[0].Rule != "Path(`/`)" {
				t.Fatalf("got %+v", c)
			}
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
