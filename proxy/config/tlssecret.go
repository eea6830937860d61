package config

import "strings"

const secretNameRule = "a DNS subdomain: lower-case letters, digits, '-' or '.', starting and ending with a letter or digit, at most 253"

// validDNSSubdomain is RFC 1123's subdomain, as Kubernetes checks the
// names of Secrets.
func validDNSSubdomain(s string) bool {
	if s == "" || len(s) > 253 || !isLowerAlnum(s[0]) || !isLowerAlnum(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if c := s[i]; !isLowerAlnum(c) && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

const tlsHostRule = "a host name, or *. and a host name"

// validTLSHost accepts what an Ingress may list in spec.tls[].hosts: a
// host name or a wildcard "*.example.com", without a trailing dot.
func validTLSHost(s string) bool {
	s = strings.TrimPrefix(s, "*.")
	return !strings.HasSuffix(s, ".") && !strings.Contains(s, "_") && validHostname(s)
}

// validateTLSSecret checks the fields of a TLS secret reference, however
// it was built.
func validateTLSSecret(ts TLSSecret) error {
	switch {
	case !validDNSLabel(ts.Namespace):
		return errorf("TLS secret of %s: namespace %s: expected %s", ts.Origin, quote(ts.Namespace), dnsLabelRule)
	case !validDNSSubdomain(ts.Name):
		return errorf("TLS secret of %s: secretName %s: expected %s", ts.Origin, quote(ts.Name), secretNameRule)
	}
	for _, h := range ts.Hosts {
		if !validTLSHost(h) {
			return errorf("TLS secret %s of %s: host %s: expected %s", quote(ts.String()), ts.Origin, quote(h), tlsHostRule)
		}
	}
	for _, ep := range ts.Entrypoints {
		if !validEntrypointName(ep) {
			return errorf("TLS secret %s of %s: entrypoint %s: expected %s", quote(ts.String()), ts.Origin, quote(ep), entrypointNameRule)
		}
	}
	return nil
}
