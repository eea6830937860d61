// Package config is latch's configuration model and every parser of user
// input that feeds it: the --entrypoint, --service and --route flag values,
// latch's own YAML file, and Traefik IngressRoute documents.
//
// Nothing here opens sockets, resolves names or reads files: the callers
// (the cobra commands, the file watcher) hand over text and get back plain
// values or one-line errors. Flag parsers never name their flag; the caller
// prefixes it ("--route: ...").
//
// # Flags
//
//	--entrypoint NAME=[HOST]:PORT           web=:8000, admin=127.0.0.1:9000, v6=[::1]:8000
//	--service    NAME=ADDR[,ADDR...]        chat=127.0.0.1:3001,[::1]:3002
//	--service    NAME=dns://HOST:PORT       chat=dns://chat:3001 (re-resolved by discovery)
//	--service    NAME=k8s://[NS/]SVC:PORT   chat=k8s://default/chat-service:3001 (PORT: number or name)
//	--route      'RULE -> SERVICE[; key=value ...]'
//
// Route options: priority=N (1..2147483647), entrypoints=a,b, strategy=
// leastconn|roundrobin|p2c, strict, name=NAME, cookie=NAME (turns stickiness
// on), cookie-secure[=true|false], cookie-httponly=true|false,
// cookie-samesite=lax|strict|none, cookie-max-age=DURATION (1h, 90m or plain
// seconds), cookie-path=/p, cookie-domain=example.com. The rule is split
// from the service at the first "->" that is outside backticks and double
// quotes, so a quoted value may contain "->".
//
// # The YAML file
//
// A file is a stream of YAML documents separated by "---". A document without
// apiVersion and kind is latch's own model (unknown keys are errors):
//
//	entrypoints:                 # optional; NAME: [HOST]:PORT
//	  web: ":8000"
//	services:                    # NAME: exactly one of servers, dns, kubernetes
//	  chat: {servers: ["127.0.0.1:3001", "127.0.0.1:3002"]}
//	  compose-chat: {dns: "chat:3001"}
//	  kube-chat: {kubernetes: "default/chat-service:3001"}
//	routes:
//	  - name: socketio           # default FILE#INDEX, e.g. latch.yaml#0
//	    rule: PathPrefix(`/socket.io`, `/meta`)
//	    service: chat
//	    priority: 10             # default 0: the rule's length decides
//	    entrypoints: [web]       # default: all
//	    strategy: leastconn      # leastconn (default), roundrobin, p2c
//	    strict: false            # true: sticky backend gone -> 503
//	    sticky:
//	      cookie:
//	        name: heyy           # default "_" + 6 hex digits derived from the route name
//	        secure: false
//	        httpOnly: true       # default true
//	        sameSite: lax        # "", lax, strict, none
//	        maxAge: 3600         # seconds or a duration such as 1h; 0: session cookie
//	        path: /              # default /
//	        domain: ""
//
// Documents with kind IngressRoute (apiVersion traefik.io/v1alpha1 or
// traefik.containo.us/v1alpha1) become routes named "NAMESPACE/NAME#INDEX";
// kind List (kubectl get -o yaml) is read item by item; IngressRouteTCP and
// IngressRouteUDP are errors; other kinds (Service, Deployment, Middleware,
// ...) are ignored. See ingressroute.go for the mapping and its deliberate
// differences from Traefik.
//
// # Putting parts together
//
// Parse each source into a *Config (FromFlags, ParseFile), Merge them, add
// DefaultEntrypoint when none is declared, then Validate. All values are
// plain data: a *Config is safe for concurrent reads, and nothing here keeps
// a reference to a Config or to its input after returning.
package config

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Config is one complete, self-contained configuration: a merge of flags,
// files and IngressRoutes. The zero value is an empty configuration.
type Config struct {
	Entrypoints []Entrypoint
	Services    []Service
	Routes      []Route
	// TLSSecrets are the certificates that IngressRoutes and Ingresses
	// name; two objects may name the same Secret.
	TLSSecrets []TLSSecret
}

// Entrypoint is a listener.
type Entrypoint struct {
	Name   string // [A-Za-z0-9_-]+
	Addr   string // normalized [HOST]:PORT: ":8000", "127.0.0.1:8000", "[::1]:8000"
	Origin string // "--entrypoint", a file name, ...
}

// TLSSecret names a Kubernetes Secret of type kubernetes.io/tls whose
// certificate the TLS entrypoints serve, chosen by SNI. latch reads only
// the Secrets named here, and only for entrypoints that serve TLS.
type TLSSecret struct {
	// Namespace is that of the object naming the Secret (a Secret is never
	// read across namespaces); never empty.
	Namespace string
	// Name is the Secret's name, a DNS subdomain.
	Name string
	// Hosts are extra SNI names for the certificate besides its own SANs
	// (an Ingress's spec.tls[].hosts, "*.example.com" allowed); nil for
	// IngressRoutes.
	Hosts []string
	// Entrypoints are the IngressRoute's entryPoints; nil: every TLS
	// entrypoint.
	Entrypoints []string
	// Origin names the object: "ingress NS/NAME", "FILE (IngressRoute NS/NAME)".
	Origin string
}

// String returns the Secret as NAMESPACE/NAME.
func (s TLSSecret) String() string { return s.Namespace + "/" + s.Name }

// DefaultEntrypoint is the listener to add when no part declares one.
func DefaultEntrypoint() Entrypoint {
	return Entrypoint{Name: "web", Addr: ":8000", Origin: "default"}
}

// String returns the entrypoint in flag form, NAME=ADDR.
func (e Entrypoint) String() string { return e.Name + "=" + e.Addr }

// SourceKind says where a service's backends come from. The zero value is
// invalid, so an unset kind is caught by Validate.
type SourceKind int

const (
	Static     SourceKind = iota + 1 // fixed addresses
	DNS                              // a host name re-resolved by discovery
	Kubernetes                       // the EndpointSlices of a Kubernetes Service
)

func (k SourceKind) String() string {
	switch k {
	case Static:
		return "static"
	case DNS:
		return "dns"
	case Kubernetes:
		return "kubernetes"
	}
	return "SourceKind(" + strconv.Itoa(int(k)) + ")"
}

// Service is a named backend pool. Which fields are set depends on Kind.
type Service struct {
	Name string // [A-Za-z0-9][A-Za-z0-9._-]*
	Kind SourceKind

	// Static: one or more distinct addresses (IPv4-mapped IPv6 is unmapped).
	Addrs []netip.AddrPort

	// DNS: the host name (lower case) and the port of every resolved address.
	Host string
	Port uint16

	// Kubernetes: the Service NAMESPACE/KubeName and its port, by name or by
	// number (exactly one is set). PortNumber is the Service's port
	// (spec.ports[].port), as in an IngressRoute; discovery maps it to the
	// endpoints' port. Namespace "" means the caller's default namespace.
	Namespace  string
	KubeName   string
	PortName   string
	PortNumber int32

	// Origin says where the service was declared: "--service", a file name,
	// or "FILE (implied by IngressRoute NS/NAME)".
	Origin string

	// Implied marks a service created only because an IngressRoute names
	// it. Merge drops it when any part declares a service of that name, so
	// `--service chat-service=127.0.0.1:3001` redirects an IngressRoute
	// to local backends.
	Implied bool
}

// Source returns the SOURCE part of the flag form: "ADDR,ADDR",
// "dns://HOST:PORT" or "k8s://[NS/]SVC:PORT".
func (s Service) Source() string {
	switch s.Kind {
	case Static:
		parts := make([]string, len(s.Addrs))
		for i, a := range s.Addrs {
			parts[i] = a.String()
		}
		return strings.Join(parts, ",")
	case DNS:
		return dnsScheme + joinHostPort(s.Host, strconv.Itoa(int(s.Port)))
	case Kubernetes:
		var b strings.Builder
		b.WriteString(k8sScheme)
		if s.Namespace != "" {
			b.WriteString(s.Namespace)
			b.WriteByte('/')
		}
		b.WriteString(s.KubeName)
		b.WriteByte(':')
		if s.PortName != "" {
			b.WriteString(s.PortName)
		} else {
			b.WriteString(strconv.Itoa(int(s.PortNumber)))
		}
		return b.String()
	}
	return ""
}

// String returns the service in flag form, NAME=SOURCE.
func (s Service) String() string { return s.Name + "=" + s.Source() }

// sameTarget reports whether two services select the same backends.
func (s Service) sameTarget(o Service) bool {
	return s.Kind == o.Kind && s.Source() == o.Source()
}

// Load-balancing strategies for new sessions. "" means StrategyLeastConn.
const (
	StrategyLeastConn  = "leastconn"
	StrategyRoundRobin = "roundrobin"
	StrategyP2C        = "p2c"
)

// SameSite values of a Cookie. "" means Lax, or None (with Secure) when the
// request came over TLS.
const (
	SameSiteLax    = "lax"
	SameSiteStrict = "strict"
	SameSiteNone   = "none"
)

// Route sends requests matching Rule to Service.
type Route struct {
	// Name is stable and unique: "NAMESPACE/NAME#INDEX" for IngressRoutes,
	// the file's name or "FILE#INDEX" for file routes, name= or "route-N"
	// (by FromFlags) for flags. ParseRoute leaves it empty without name=.
	Name string

	Rule        string   // Traefik rule text, parsed elsewhere; never empty
	Priority    int      // 1..MaxInt32; 0: the caller uses len(Rule)
	Entrypoints []string // nil: all entrypoints
	Service     string
	Strategy    string  // "", StrategyLeastConn, StrategyRoundRobin or StrategyP2C
	Sticky      *Cookie // nil: no stickiness
	Strict      bool    // sticky backend gone: 503 instead of a new pick
	Origin      string
}

// Cookie describes the sticky cookie of a route.
type Cookie struct {
	Name     string        // an RFC 6265 token
	Secure   bool          // always set Secure (it is also set behind TLS)
	HTTPOnly bool          // DefaultCookie sets it
	SameSite string        // "", SameSiteLax, SameSiteStrict or SameSiteNone
	MaxAge   time.Duration // whole seconds; 0: a session cookie
	Path     string        // DefaultCookie sets "/"
	Domain   string        // "": host-only
}

// DefaultCookie returns latch's defaults for a sticky cookie: HttpOnly and
// Path=/. They apply to every source, IngressRoutes included.
func DefaultCookie(name string) Cookie {
	return Cookie{Name: name, HTTPOnly: true, Path: "/"}
}

// String returns the route in flag form, so that ParseRoute(r.String())
// gives r back (apart from Origin) for any route a parser produced.
func (r Route) String() string {
	var b strings.Builder
	b.WriteString(r.Rule)
	b.WriteString(" -> ")
	b.WriteString(r.Service)
	opt := func(k, v string) {
		b.WriteString("; ")
		b.WriteString(k)
		if v != "" {
			b.WriteByte('=')
			b.WriteString(v)
		}
	}
	if r.Name != "" {
		opt(optName, r.Name)
	}
	if r.Priority != 0 {
		opt(optPriority, strconv.Itoa(r.Priority))
	}
	if len(r.Entrypoints) > 0 {
		opt(optEntrypoints, strings.Join(r.Entrypoints, ","))
	}
	if r.Strategy != "" {
		opt(optStrategy, r.Strategy)
	}
	if r.Strict {
		opt(optStrict, "")
	}
	if c := r.Sticky; c != nil {
		opt(optCookie, c.Name)
		if c.Secure {
			opt(optCookieSecure, "")
		}
		if !c.HTTPOnly {
			opt(optCookieHTTPOnly, "false")
		}
		if c.SameSite != "" {
			opt(optCookieSameSite, c.SameSite)
		}
		if c.MaxAge != 0 {
			opt(optCookieMaxAge, c.MaxAge.String())
		}
		if c.Path != "/" && c.Path != "" {
			opt(optCookiePath, c.Path)
		}
		if c.Domain != "" {
			opt(optCookieDomain, c.Domain)
		}
	}
	return b.String()
}

// Clone returns a deep copy, so the result can be changed without touching c.
func (c *Config) Clone() *Config {
	if c == nil {
		return nil
	}
	out := &Config{Entrypoints: append([]Entrypoint(nil), c.Entrypoints...)}
	for _, s := range c.Services {
		s.Addrs = append([]netip.AddrPort(nil), s.Addrs...)
		out.Services = append(out.Services, s)
	}
	for _, r := range c.Routes {
		out.Routes = append(out.Routes, r.clone())
	}
	for _, ts := range c.TLSSecrets {
		out.TLSSecrets = append(out.TLSSecrets, ts.clone())
	}
	return out
}

func (s TLSSecret) clone() TLSSecret {
	if s.Hosts != nil {
		s.Hosts = append([]string(nil), s.Hosts...)
	}
	if s.Entrypoints != nil {
		s.Entrypoints = append([]string(nil), s.Entrypoints...)
	}
	return s
}

func (r Route) clone() Route {
	if r.Entrypoints != nil {
		r.Entrypoints = append([]string(nil), r.Entrypoints...)
	}
	if r.Sticky != nil {
		c := *r.Sticky
		r.Sticky = &c
	}
	return r
}
