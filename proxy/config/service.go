package config

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
)

const (
	dnsScheme = "dns://"
	k8sScheme = "k8s://"

	serviceForm   = "NAME=SOURCE (e.g. chat=127.0.0.1:3001,127.0.0.1:3002)"
	sourceForms   = "ADDR[,ADDR...], dns://HOST:PORT or k8s://[NAMESPACE/]SERVICE:PORT"
	staticAddrMsg = "expected ADDR as HOST:PORT (e.g. 127.0.0.1:3001)"
	dnsForm       = "dns://HOST:PORT (e.g. dns://chat:3001)"
	k8sForm       = "k8s://[NAMESPACE/]SERVICE:PORT (e.g. k8s://default/chat:3001 or k8s://chat:http)"
)

// ParseService parses a --service value, NAME=SOURCE, where SOURCE is
// ADDR[,ADDR...] (IP:PORT, IPv6 as [::1]:3001), dns://HOST:PORT or
// k8s://[NAMESPACE/]SERVICE:PORT with PORT a Service port number or name.
// A k8s:// source without a namespace leaves Namespace empty: the caller
// picks its default.
func ParseService(s string) (Service, error) {
	name, src, ok := strings.Cut(strings.TrimSpace(s), "=")
	name, src = strings.TrimSpace(name), strings.TrimSpace(src)
	if !ok || name == "" || src == "" {
		return Service{}, errorf("%s: expected %s", quote(s), serviceForm)
	}
	if !validServiceName(name) {
		return Service{}, errorf("service name %s: expected %s", quote(name), serviceNameRule)
	}
	svc, err := parseSource(src, s)
	if err != nil {
		return Service{}, err
	}
	svc.Name = name
	svc.Origin = "--service"
	return svc, nil
}

// parseSource parses SOURCE; whole is the text to name in errors.
func parseSource(src, whole string) (Service, error) {
	if scheme, _, ok := strings.Cut(src, "://"); ok {
		switch strings.ToLower(scheme) {
		case "dns":
			return parseDNS(src[len(dnsScheme):], whole)
		case "k8s":
			return parseKubernetes(src[len(k8sScheme):], whole)
		}
		return Service{}, errorf("%s: unknown scheme %s (expected %s)", quote(whole), quote(scheme), sourceForms)
	}
	return parseStatic(strings.Split(src, ","), quote(whole), false)
}

// parseStatic parses a list of IP:PORT addresses. ctx names the input in
// errors; the address itself is named too when the list has several or
// nameAddr is set.
func parseStatic(list []string, ctx string, nameAddr bool) (Service, error) {
	addrs := make([]netip.AddrPort, 0, len(list))
	seen := make(map[netip.AddrPort]bool, len(list))
	for _, raw := range list {
		a := strings.TrimSpace(raw)
		what := ctx
		if len(list) > 1 || nameAddr {
			what += ": address " + quote(a)
		}
		ap, err := parseStaticAddr(a, what)
		if err != nil {
			return Service{}, err
		}
		if seen[ap] {
			return Service{}, errorf("%s: address %s is listed twice", ctx, quote(ap.String()))
		}
		seen[ap] = true
		addrs = append(addrs, ap)
	}
	return Service{Kind: Static, Addrs: addrs}, nil
}

func parseStaticAddr(a, what string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return netip.AddrPort{}, errorf("%s: %s", what, staticAddrMsg)
	}
	p, ok := parsePort(port)
	if !ok {
		return netip.AddrPort{}, errorf("%s: port %s: expected a number from 1 to 65535", what, quote(port))
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		if validHostname(host) && !isIPv4Literal(host) {
			return netip.AddrPort{}, errorf("%s: %s is a host name, not an IP address (use dns://%s)",
				what, quote(host), joinHostPort(host, port))
		}
		return netip.AddrPort{}, errorf("%s: %s", what, staticAddrMsg)
	}
	return netip.AddrPortFrom(ip.Unmap(), p), nil
}

func parseDNS(rest, whole string) (Service, error) {
	host, port, err := net.SplitHostPort(rest)
	if err != nil || host == "" {
		return Service{}, errorf("%s: expected %s", quote(whole), dnsForm)
	}
	if !validHostname(host) {
		return Service{}, errorf("%s: host %s: expected a host name", quote(whole), quote(host))
	}
	p, ok := parsePort(port)
	if !ok {
		return Service{}, errorf("%s: port %s: expected a number from 1 to 65535", quote(whole), quote(port))
	}
	return Service{Kind: DNS, Host: strings.ToLower(host), Port: p}, nil
}

// parseKubernetes parses [NAMESPACE/]SERVICE:PORT.
func parseKubernetes(rest, whole string) (Service, error) {
	ref, port, ok := strings.Cut(rest, ":")
	if !ok || ref == "" || port == "" {
		return Service{}, errorf("%s: expected %s", quote(whole), k8sForm)
	}
	ns, name, hasNS := strings.Cut(ref, "/")
	if !hasNS {
		ns, name = "", ref
	} else if !validDNSLabel(ns) {
		return Service{}, errorf("%s: namespace %s: expected %s", quote(whole), quote(ns), dnsLabelRule)
	}
	if !validDNSLabel(name) {
		return Service{}, errorf("%s: service %s: expected %s", quote(whole), quote(name), dnsLabelRule)
	}
	svc := Service{Kind: Kubernetes, Namespace: ns, KubeName: name}
	if err := setKubePort(&svc, port); err != nil {
		return Service{}, errorf("%s: %w", quote(whole), err)
	}
	return svc, nil
}

// setKubePort sets PortNumber for a decimal port and PortName otherwise.
func setKubePort(svc *Service, port string) error {
	if strings.Trim(port, "0123456789") == "" {
		p, ok := parsePort(port)
		if !ok {
			return errorf("port %s: expected a number from 1 to 65535 or a port name", quote(port))
		}
		svc.PortNumber = int32(p)
		return nil
	}
	if !validDNSLabel(port) {
		return errorf("port %s: expected a number from 1 to 65535 or a port name (%s)", quote(port), dnsLabelRule)
	}
	svc.PortName = port
	return nil
}

// validateService checks the fields of a service, however it was built.
func validateService(s Service) error {
	if !validServiceName(s.Name) {
		return errorf("service name %s: expected %s", quote(s.Name), serviceNameRule)
	}
	switch s.Kind {
	case Static:
		if len(s.Addrs) == 0 {
			return errorf("service %s has no addresses", quote(s.Name))
		}
		seen := make(map[netip.AddrPort]bool, len(s.Addrs))
		for _, a := range s.Addrs {
			if !a.IsValid() || a.Port() == 0 {
				return errorf("service %s: address %s: %s", quote(s.Name), quote(a.String()), staticAddrMsg)
			}
			if seen[a] {
				return errorf("service %s: address %s is listed twice", quote(s.Name), quote(a.String()))
			}
			seen[a] = true
		}
	case DNS:
		if !validHostname(s.Host) || s.Port == 0 {
			return errorf("service %s: %s: expected %s", quote(s.Name), quote(s.Source()), dnsForm)
		}
	case Kubernetes:
		if s.Namespace != "" && !validDNSLabel(s.Namespace) {
			return errorf("service %s: namespace %s: expected %s", quote(s.Name), quote(s.Namespace), dnsLabelRule)
		}
		if !validDNSLabel(s.KubeName) {
			return errorf("service %s: Kubernetes service %s: expected %s", quote(s.Name), quote(s.KubeName), dnsLabelRule)
		}
		byName, byNumber := s.PortName != "", s.PortNumber != 0
		if byName == byNumber || byName && !validDNSLabel(s.PortName) || s.PortNumber < 0 || s.PortNumber > 65535 {
			return errorf("service %s: expected exactly one of a port name or a port number 1..65535, got %s and %s",
				quote(s.Name), quote(s.PortName), strconv.Itoa(int(s.PortNumber)))
		}
	default:
		return errorf("service %s: unknown source kind %s", quote(s.Name), s.Kind)
	}
	return nil
}
