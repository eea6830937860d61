package rules

import (
	"bytes"
	"net/netip"
)

// Request is what matchers read.
//
// Every returned slice needs to stay valid only until the Match call that
// asked for it returns; matching never keeps or modifies one. Methods may be
// called several times per Match and must not allocate if Match is to stay
// allocation-free. Answers must not change during a Match: an Index may
// reuse one answer to Path, Method or Header for several rules. Implement
// Request on a pointer type so that passing it as an interface allocates
// nothing.
type Request interface {
	// Host returns the Host header as sent: it may carry a :port suffix and
	// is not lowercased.
	Host() []byte
	// Path returns the decoded path, without the query.
	Path() []byte
	// Method returns the request method as sent.
	Method() []byte
	// Header returns the first value of the named header, or nil when the
	// header is absent (a present but empty header returns a non-nil empty
	// slice). Matchers pass names in canonical form ("X-Api-Key"), but the
	// lookup must not depend on how the client spelled the name.
	Header(name []byte) []byte
	// Query returns the first decoded value of the named query parameter and
	// whether the parameter is present at all (?k and ?k= are present with
	// an empty value).
	Query(name []byte) ([]byte, bool)
	// ClientIP returns the address of the client; the zero Addr when unknown.
	ClientIP() netip.Addr
}

// maxHostKey bounds the host names the Index looks up by value; longer hosts
// only reach rules indexed under "any host".
const maxHostKey = 256

// canonHost removes a port and surrounding ASCII white space from a Host
// header the way Traefik's request decorator does (net.SplitHostPort, and
// the header unchanged when that fails). It does not lowercase; the result
// aliases h.
func canonHost(h []byte) []byte {
	return trimSpace(stripPort(h))
}

// stripPort mirrors net.SplitHostPort, returning h itself on any error.
func stripPort(h []byte) []byte {
	i := bytes.LastIndexByte(h, ':')
	if i < 0 {
		return h
	}
	var host []byte
	j, k := 0, 0
	if h[0] == '[' {
		end := bytes.IndexByte(h, ']')
		if end < 0 || end+1 != i {
			return h
		}
		host = h[1:end]
		j, k = 1, end+1
	} else {
		host = h[:i]
		if bytes.IndexByte(host, ':') >= 0 {
			return h
		}
	}
	if bytes.IndexByte(h[j:], '[') >= 0 || bytes.IndexByte(h[k:], ']') >= 0 {
		return h
	}
	return host
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func lowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func hasUpper(b []byte) bool {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			return true
		}
	}
	return false
}

// equalFold reports whether b equals the lowercase ASCII string s, ignoring
// ASCII case in b.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lowerByte(b[i]) != s[i] {
			return false
		}
	}
	return true
}

// hostKey writes the canonical host h (see canonHost) lowercased into buf,
// for looking up the Index's host buckets. ok is false when it does not fit.
func hostKey(buf *[maxHostKey]byte, h []byte) (key []byte, ok bool) {
	if len(h) > len(buf) {
		return nil, false
	}
	for i, c := range h {
		buf[i] = lowerByte(c)
	}
	return buf[:len(h)], true
}

// equalFoldASCII reports whether b equals s, ignoring ASCII case.
func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lowerByte(b[i]) != lowerByte(s[i]) {
			return false
		}
	}
	return true
}
