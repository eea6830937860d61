package config

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxQuoted bounds how much of an offending text an error repeats, so a
// 100 KB flag value gives a readable one-line message.
const maxQuoted = 80

// quote renders user text for an error message: Go-quoted (so newlines and
// control characters stay escaped and the message stays on one line) and
// cut after maxQuoted bytes.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	n := maxQuoted
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strconv.Quote(s[:n]) + "..."
}

// errorf is fmt.Errorf for messages whose arguments were passed through
// quote; it exists to keep the one-line rule in one place.
func errorf(format string, args ...any) error {
	return oneLine(fmt.Errorf(format, args...))
}

// oneLine guarantees the invariant of every error in this package: no line
// breaks, whatever a library put in its message.
func oneLine(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if !strings.ContainsAny(msg, "\r\n") {
		return err
	}
	return flatError{msg: flatten(msg), err: err}
}

type flatError struct {
	msg string
	err error
}

func (e flatError) Error() string { return e.msg }
func (e flatError) Unwrap() error { return e.err }

func flatten(s string) string {
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	out := strings.Join(lines, " ")
	out = strings.ReplaceAll(out, ": ;", ":")
	return out
}

// knownList renders a sorted, bounded list of names for "(known: ...)".
func knownList(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	s := append([]string(nil), names...)
	sort.Strings(s)
	const max = 10
	if len(s) > max {
		return strings.Join(s[:max], ", ") + fmt.Sprintf(", ... %d more", len(s)-max)
	}
	return strings.Join(s, ", ")
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isLowerAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
}

const entrypointNameRule = "letters, digits, '-' or '_', at most 63"

// validEntrypointName: Traefik entrypoint names in practice (web,
// websecure, metrics, my_tls).
func validEntrypointName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

const serviceNameRule = "letters, digits, '.', '_' or '-', starting with a letter or digit, at most 253"

// validServiceName accepts Kubernetes and docker-compose service names.
func validServiceName(s string) bool {
	if s == "" || len(s) > 253 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

const routeNameRule = "letters, digits and -_./#:@, starting with a letter or digit, at most 253"

// validRouteName accepts the generated names ("route-1",
// "default/chat-svc-route#0", "latch.yaml#2") and keeps names safe in log
// keys and metric labels.
func validRouteName(s string) bool {
	if s == "" || len(s) > 253 || !isAlnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && !strings.ContainsRune("-_./#:@", rune(c)) {
			return false
		}
	}
	return true
}

const dnsLabelRule = "lower-case letters, digits or '-', starting and ending with a letter or digit, at most 63"

// validDNSLabel is RFC 1123's label, as Kubernetes checks namespaces,
// Service names and Service port names.
func validDNSLabel(s string) bool {
	if s == "" || len(s) > 63 || !isLowerAlnum(s[0]) || !isLowerAlnum(s[len(s)-1]) {
		return false
	}
	for i := 1; i < len(s)-1; i++ {
		if c := s[i]; !isLowerAlnum(c) && c != '-' {
			return false
		}
	}
	return true
}

// validHostname accepts RFC 1123 host names, plus '_' (docker-compose
// service names resolve with it) and one trailing dot.
func validHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlnum(c) && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

const cookieNameRule = "an RFC 6265 token: letters, digits and !#$%&'*+-.^_`|~"

// validCookieName is RFC 6265's cookie-name, an RFC 7230 token.
func validCookieName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

// validCookiePath is RFC 6265's path-value, absolute, without whitespace
// (it would not survive the flag grammar's trimming).
func validCookiePath(s string) bool {
	if s == "" || s[0] != '/' || len(s) > 1024 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f || c == ';' {
			return false
		}
	}
	return true
}

// validCookieDomain is a host name with an optional leading dot.
func validCookieDomain(s string) bool {
	s = strings.TrimPrefix(s, ".")
	return validHostname(s) && !strings.HasSuffix(s, ".")
}

// controlChar returns the first ASCII control character other than tab,
// CR and LF, or -1.
func controlChar(s string) int {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
			return int(c)
		}
	}
	return -1
}

func joinHostPort(host, port string) string { return net.JoinHostPort(host, port) }

// parsePort parses a decimal port 1..65535.
func parsePort(s string) (uint16, bool) {
	if s == "" || len(s) > 5 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, false
	}
	return uint16(n), true
}
