package config

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
)

const entrypointForm = "NAME=ADDR (e.g. web=:8000)"

// ParseEntrypoint parses an --entrypoint value, NAME=[HOST]:PORT. HOST may
// be empty (all interfaces), an IP address (IPv6 in brackets) or a host
// name; the address is normalized (":08000" becomes ":8000").
func ParseEntrypoint(s string) (Entrypoint, error) {
	name, addr, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok {
		return Entrypoint{}, errorf("%s: expected %s", quote(s), entrypointForm)
	}
	name, addr = strings.TrimSpace(name), strings.TrimSpace(addr)
	if !validEntrypointName(name) {
		return Entrypoint{}, errorf("entrypoint name %s: expected %s", quote(name), entrypointNameRule)
	}
	norm, err := normalizeListenAddr(addr)
	if err != nil {
		return Entrypoint{}, err
	}
	return Entrypoint{Name: name, Addr: norm, Origin: "--entrypoint"}, nil
}

const listenAddrForm = "[HOST]:PORT (e.g. :8000, 127.0.0.1:8000 or [::1]:8000)"

func normalizeListenAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", errorf("address %s: expected %s", quote(addr), listenAddrForm)
	}
	p, ok := parsePort(port)
	if !ok {
		return "", errorf("port %s in %s: expected a number from 1 to 65535", quote(port), quote(addr))
	}
	switch {
	case host == "":
	case strings.ContainsRune(host, ':') || isIPv4Literal(host):
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return "", errorf("host %s in %s: expected an IP address or a host name", quote(host), quote(addr))
		}
		host = ip.String()
	default:
		if !validHostname(host) {
			return "", errorf("host %s in %s: expected an IP address or a host name", quote(host), quote(addr))
		}
		host = strings.ToLower(host)
	}
	return net.JoinHostPort(host, strconv.Itoa(int(p))), nil
}

// isIPv4Literal reports whether host looks like it means to be a dotted
// IPv4 address (only digits and dots), so "300.1.1.1" is an error rather
// than a host name.
func isIPv4Literal(host string) bool {
	return strings.Trim(host, "0123456789.") == "" && strings.Contains(host, ".")
}

// listenConflict reports whether two normalized listen addresses would
// fight for the same port: equal, or the same port with a wildcard host.
func listenConflict(a, b string) bool {
	if a == b {
		return true
	}
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb {
		return false
	}
	return isWildcard(ha) || isWildcard(hb)
}

func isWildcard(host string) bool {
	if host == "" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsUnspecified()
}
