package config

import (
	"encoding/json"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// Traefik IngressRoute documents, mapped to latch's model:
//
//   - Each spec.routes[i] becomes the Route "NAMESPACE/NAME#i" (namespace
//     "default" when metadata has none) with spec.entryPoints, match,
//     priority and the sticky cookie of its service.
//   - The service reference {name, port, namespace} becomes the latch
//     service named name. When no part declares a service of that name, an
//     Implied Kubernetes service k8s://NAMESPACE/NAME:PORT stands in for it;
//     declaring one (--service chat-service=127.0.0.1:3001) redirects the
//     route, which is how the seed runs without a cluster.
//   - Cookie defaults are latch's, not Traefik's: HttpOnly unless the object
//     says httpOnly: false (Traefik defaults to false), Path=/, SameSite Lax
//     (None behind TLS). Without a name, the cookie is named "_" and 6 hex
//     digits derived from the route name.
//   - strategy RoundRobin or wrr maps to roundrobin, p2c to p2c; an absent
//     strategy keeps latch's default, leastconn (Traefik's is wrr).
//   - spec.tls.secretName becomes a TLSSecret in the object's namespace,
//     for the object's entryPoints: the TLS entrypoints among them serve its
//     certificate by SNI. The rest of spec.tls (options, store,
//     certResolver, domains) is ignored: latch serves TLS on the entrypoints
//     given --tls, whatever a route asks.
//   - Ignored, as they do not change which backend serves a request:
//     syntax (the rules package reads both dialects), observability,
//     passHostHeader, responseForwarding, serversTransport, healthCheck,
//     nativeLB, nodePortLB, and weight with a single service.
//   - Errors, because latch would otherwise serve the route differently
//     from Traefik: middlewares, several (weighted) services, services of
//     kind TraefikService, scheme https or h2c, partitioned cookies.
const (
	groupTraefik    = "traefik.io"
	groupContainous = "traefik.containo.us"
	irVersion       = "v1alpha1"
)

// parseObject handles a document with apiVersion and kind; j is its JSON.
func parseObject(name string, doc, j []byte, line int, apiVersion, kind string, inList bool) (*Config, error) {
	at := lineNote(line)
	if apiVersion == "" {
		return nil, errorf("%skind %s has no apiVersion", at, quote(kind))
	}
	if kind == "" {
		return nil, errorf("%sapiVersion %s has no kind", at, quote(apiVersion))
	}
	group, version, _ := strings.Cut(apiVersion, "/")
	traefik := group == groupTraefik || group == groupContainous
	switch {
	case kind == "List" || traefik && kind == "IngressRouteList":
		if inList {
			return nil, errorf("%sa %s inside a List is not supported", at, kind)
		}
		return parseList(name, j, line)
	case kind == "IngressRoute":
		if !traefik || version != irVersion {
			return nil, errorf("%sapiVersion %s of kind IngressRoute: expected %s/%s or %s/%s",
				at, quote(apiVersion), groupTraefik, irVersion, groupContainous, irVersion)
		}
		return parseIngressRoute(name, doc, line)
	case traefik && (kind == "IngressRouteTCP" || kind == "IngressRouteUDP"):
		return nil, errorf("%skind %s is not supported (latch routes HTTP: use kind IngressRoute)", at, kind)
	}
	return &Config{}, nil // Service, Deployment, Middleware...: not latch's business
}

func parseList(name string, j []byte, line int) (*Config, error) {
	var list struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(j, &list); err != nil {
		return nil, errorf("%sitems: expected a list of objects", lineNote(line))
	}
	var parts []*Config
	for i, item := range list.Items {
		part, err := parseDocument(name, item, 1, true)
		if err != nil {
			return nil, errorf("%sitems[%d]: %w", lineNote(line), i, err)
		}
		parts = append(parts, part)
	}
	return Merge(parts...)
}

type ingressRoute struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   json.RawMessage `json:"metadata"` // read leniently: labels, uid, managedFields...
	Spec       irSpec          `json:"spec"`
	Status     json.RawMessage `json:"status"`
}

type irSpec struct {
	EntryPoints []string  `json:"entryPoints"`
	Routes      []irRoute `json:"routes"`
	TLS         *irTLS    `json:"tls"`
}

// irTLS is spec.tls; only secretName is read.
type irTLS struct {
	SecretName   string          `json:"secretName"`
	Options      json.RawMessage `json:"options"`
	Store        json.RawMessage `json:"store"`
	CertResolver string          `json:"certResolver"`
	Domains      json.RawMessage `json:"domains"`
}

type irRoute struct {
	Match         string            `json:"match"`
	Kind          string            `json:"kind"`
	Priority      int               `json:"priority"`
	Syntax        string            `json:"syntax"`
	Services      []irService       `json:"services"`
	Middlewares   []json.RawMessage `json:"middlewares"`
	Observability json.RawMessage   `json:"observability"`
}

type irService struct {
	Name               string          `json:"name"`
	Kind               string          `json:"kind"`
	Namespace          string          `json:"namespace"`
	Port               intOrString     `json:"port"`
	Scheme             string          `json:"scheme"`
	Strategy           string          `json:"strategy"`
	Weight             *int            `json:"weight"`
	Sticky             *irSticky       `json:"sticky"`
	PassHostHeader     *bool           `json:"passHostHeader"`
	ResponseForwarding json.RawMessage `json:"responseForwarding"`
	ServersTransport   string          `json:"serversTransport"`
	HealthCheck        json.RawMessage `json:"healthCheck"`
	NativeLB           *bool           `json:"nativeLB"`
	NodePortLB         *bool           `json:"nodePortLB"`
}

type irSticky struct {
	Cookie *irCookie `json:"cookie"`
}

type irCookie struct {
	fileCookie
	Partitioned bool `json:"partitioned"`
}

// intOrString is a Kubernetes port: a number or a port name.
type intOrString struct{ s string }

func (p *intOrString) UnmarshalJSON(b []byte) error {
	if json.Unmarshal(b, &p.s) == nil {
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errorf("port %s: expected a number or a port name", quote(string(b)))
	}
	p.s = n.String()
	return nil
}

func parseIngressRoute(file string, doc []byte, line int) (*Config, error) {
	at := lineNote(line)
	var ir ingressRoute
	if err := yaml.UnmarshalStrict(doc, &ir); err != nil {
		return nil, yamlError(err, doc, line)
	}
	var meta struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	}
	_ = json.Unmarshal(ir.Metadata, &meta)
	if meta.Name == "" {
		return nil, errorf("%sIngressRoute has no metadata.name", at)
	}
	if meta.Namespace == "" {
		meta.Namespace = "default"
	}
	id := meta.Namespace + "/" + meta.Name
	ctx := at + "IngressRoute " + quote(id)
	if len(ir.Spec.Routes) == 0 {
		return nil, errorf("%s: spec.routes is empty", ctx)
	}
	c := &Config{}
	for i, ep := range ir.Spec.EntryPoints {
		if !validEntrypointName(ep) {
			return nil, errorf("%s: entryPoints[%d] %s: expected %s", ctx, i, quote(ep), entrypointNameRule)
		}
	}
	for i, rt := range ir.Spec.Routes {
		r, svc, err := irRouteToRoute(rt, fmt.Sprintf("%s#%d", id, i), meta.Namespace)
		if err != nil {
			return nil, errorf("%s: routes[%d]: %w", ctx, i, err)
		}
		if len(ir.Spec.EntryPoints) > 0 {
			r.Entrypoints = append([]string(nil), ir.Spec.EntryPoints...)
		}
		r.Origin = file + " (IngressRoute " + id + ")"
		svc.Origin = file + " (implied by IngressRoute " + id + ")"
		c.Routes = append(c.Routes, r)
		c.Services = append(c.Services, svc)
	}
	if t := ir.Spec.TLS; t != nil && t.SecretName != "" {
		ts := TLSSecret{Namespace: meta.Namespace, Name: t.SecretName, Origin: file + " (IngressRoute " + id + ")"}
		if len(ir.Spec.EntryPoints) > 0 {
			ts.Entrypoints = append([]string(nil), ir.Spec.EntryPoints...)
		}
		if !validDNSSubdomain(ts.Name) {
			return nil, errorf("%s: tls.secretName %s: expected %s", ctx, quote(ts.Name), secretNameRule)
		}
		c.TLSSecrets = append(c.TLSSecrets, ts)
	}
	return c, nil
}

// irRouteToRoute maps one IngressRoute route and returns the Kubernetes
// service it implies.
func irRouteToRoute(rt irRoute, name, namespace string) (Route, Service, error) {
	switch {
	case rt.Kind != "" && rt.Kind != "Rule":
		return Route{}, Service{}, errorf("kind %s: expected Rule", quote(rt.Kind))
	case strings.TrimSpace(rt.Match) == "":
		return Route{}, Service{}, errorf("match is missing")
	case len(rt.Middlewares) > 0:
		return Route{}, Service{}, errorf("middlewares are not supported (latch would serve the route without them)")
	case len(rt.Services) == 0:
		return Route{}, Service{}, errorf("services is empty")
	case len(rt.Services) > 1:
		return Route{}, Service{}, errorf("%d services: weighted services are not supported yet (use one service per route)", len(rt.Services))
	case rt.Priority < 0:
		return Route{}, Service{}, errorf("priority %d: expected an integer from 1 to 2147483647 (or none)", rt.Priority)
	}
	s := rt.Services[0]
	switch {
	case s.Kind != "" && s.Kind != "Service":
		return Route{}, Service{}, errorf("service kind %s is not supported (expected Service)", quote(s.Kind))
	case s.Scheme != "" && s.Scheme != "http":
		return Route{}, Service{}, errorf("service scheme %s is not supported (latch speaks http to backends)", quote(s.Scheme))
	case !validDNSLabel(s.Name):
		return Route{}, Service{}, errorf("service name %s: expected %s", quote(s.Name), dnsLabelRule)
	case s.Port.s == "":
		return Route{}, Service{}, errorf("service %s has no port", quote(s.Name))
	}
	svc := Service{Name: s.Name, Kind: Kubernetes, Namespace: namespace, KubeName: s.Name, Implied: true}
	if s.Namespace != "" {
		if !validDNSLabel(s.Namespace) {
			return Route{}, Service{}, errorf("service namespace %s: expected %s", quote(s.Namespace), dnsLabelRule)
		}
		svc.Namespace = s.Namespace
	}
	if err := setKubePort(&svc, s.Port.s); err != nil {
		return Route{}, Service{}, errorf("service %s: %w", quote(s.Name), err)
	}

	r := Route{Name: name, Rule: strings.TrimSpace(rt.Match), Priority: rt.Priority, Service: s.Name}
	switch strings.ToLower(s.Strategy) {
	case "":
	case "roundrobin", "wrr":
		r.Strategy = StrategyRoundRobin
	case "p2c":
		r.Strategy = StrategyP2C
	default:
		return Route{}, Service{}, errorf("strategy %s is not supported (expected RoundRobin, wrr or p2c)", quote(s.Strategy))
	}
	if s.Sticky != nil && s.Sticky.Cookie != nil {
		if s.Sticky.Cookie.Partitioned {
			return Route{}, Service{}, errorf("sticky.cookie.partitioned is not supported")
		}
		c, err := fileCookieToCookie(name, &s.Sticky.Cookie.fileCookie)
		if err != nil {
			return Route{}, Service{}, errorf("sticky.cookie: %w", err)
		}
		r.Sticky = c
	}
	if err := validateRoute(r); err != nil {
		return Route{}, Service{}, err
	}
	return r, svc, nil
}
