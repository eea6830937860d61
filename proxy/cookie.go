package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// requestCookie returns the value of the request's cookie name. It reads
// the first Cookie header in place: asking fasthttp would parse every
// cookie into its list, and a request whose cookies were parsed has its
// Cookie header written anew when it is forwarded. A name not found there
// is left to fasthttp, which looks through every Cookie header (a client
// sends one, RFC 6265 section 5.4, but a request may carry more).
func requestCookie(h *fasthttp.RequestHeader, name string) []byte {
	if len(h.RawHeaders()) == 0 {
		// A header built in code: its cookies are in fasthttp's list
		// already, and reading them as one header would render them.
		return h.Cookie(name)
	}
	if v, ok := scanCookie(h.PeekBytes(hdrCookie), name); ok {
		return v
	}
	return h.Cookie(name)
}

// scanCookie finds name in a Cookie header value ("a=1; b=2") as fasthttp
// parses one: pairs split at ';', the name and value trimmed of spaces and
// tabs, the value of its surrounding double quotes; a value holding '"',
// ';' or '\' is skipped. The first valid pair of that name wins.
func scanCookie(s []byte, name string) ([]byte, bool) {
	for len(s) > 0 {
		pair := s
		if i := bytes.IndexByte(s, ';'); i >= 0 {
			pair, s = s[:i], s[i+1:]
		} else {
			s = nil
		}
		eq := bytes.IndexByte(pair, '=')
		if eq < 0 || string(trimOWS(pair[:eq])) != name {
			continue
		}
		v := trimOWS(pair[eq+1:])
		if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		if bytes.ContainsAny(v, "\"\\") {
			continue
		}
		return v, true
	}
	return nil, false
}

// trimOWS trims spaces and tabs from both ends of b.
func trimOWS(b []byte) []byte {
	return bytes.Trim(b, " \t")
}
