package proxy

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// Header names and values, declared once as byte slices so the hot path
// never converts strings.
var (
	hdrConnection        = []byte("Connection")
	hdrKeepAlive         = []byte("Keep-Alive")
	hdrProxyConnection   = []byte("Proxy-Connection")
	hdrProxyAuthenticate = []byte("Proxy-Authenticate")
	hdrProxyAuthz        = []byte("Proxy-Authorization")
	hdrTE                = []byte("Te")
	hdrTrailer           = []byte("Trailer")
	hdrTransferEncoding  = []byte("Transfer-Encoding")
	hdrUpgrade           = []byte("Upgrade")
	hdrSetCookie         = []byte("Set-Cookie")
	hdrXForwardedFor     = []byte("X-Forwarded-For")
	hdrXForwardedProto   = []byte("X-Forwarded-Proto")
	hdrXForwardedHost    = []byte("X-Forwarded-Host")

	valHTTP    = []byte("http")
	valHTTPS   = []byte("https")
	valUpgrade = []byte("Upgrade")
	commaSpace = []byte(", ")
)

// hopByHop are the headers that describe one connection and must not be
// forwarded (RFC 9110 section 7.6.1). Connection and Transfer-Encoding are
// also managed by fasthttp itself.
var hopByHop = [][]byte{
	hdrConnection, hdrKeepAlive, hdrProxyConnection, hdrProxyAuthenticate,
	hdrProxyAuthz, hdrTE, hdrTrailer, hdrTransferEncoding, hdrUpgrade,
}

// header is what hop-by-hop stripping needs of fasthttp's request and
// response headers.
type header interface {
	PeekBytes(key []byte) []byte
	DelBytes(key []byte)
	SetBytesKV(key, value []byte)
}

var (
	_ header = (*fasthttp.RequestHeader)(nil)
	_ header = (*fasthttp.ResponseHeader)(nil)
)

// stripHopByHop removes hop-by-hop headers, including every header the
// sender named in Connection. When keepUpgrade is set, Upgrade and
// "Connection: Upgrade" survive, for a WebSocket handshake. It allocates
// nothing; Connection values longer than 256 bytes are only partly honoured.
func stripHopByHop(h header, keepUpgrade bool) {
	var buf [256]byte
	conn := buf[:copy(buf[:], h.PeekBytes(hdrConnection))]
	for _, name := range commaTokens(conn) {
		if name == nil {
			break
		}
		if keepUpgrade && bytes.EqualFold(name, hdrUpgrade) {
			continue
		}
		h.DelBytes(name)
	}
	for _, name := range hopByHop {
		if keepUpgrade && (bytes.Equal(name, hdrUpgrade) || bytes.Equal(name, hdrConnection)) {
			continue
		}
		h.DelBytes(name)
	}
	if keepUpgrade {
		h.SetBytesKV(hdrConnection, valUpgrade)
	}
}

// maxConnectionTokens bounds how many names one Connection header may list;
// more are ignored rather than allocated for.
const maxConnectionTokens = 16

// commaTokens splits a comma-separated header value into trimmed tokens
// without allocating; unused slots are nil. The tokens alias v and are
// valid as long as v is.
func commaTokens(v []byte) (out [maxConnectionTokens][]byte) {
	n := 0
	for len(v) > 0 && n < len(out) {
		i := bytes.IndexByte(v, ',')
		var tok []byte
		if i < 0 {
			tok, v = v, nil
		} else {
			tok, v = v[:i], v[i+1:]
		}
		tok = bytes.TrimSpace(tok)
		if len(tok) > 0 {
			out[n] = tok
			n++
		}
	}
	return out
}

// hasToken reports whether a comma-separated header value lists tok,
// case-insensitively.
func hasToken(v, tok []byte) bool {
	for _, t := range commaTokens(v) {
		if t == nil {
			return false
		}
		if bytes.EqualFold(t, tok) {
			return true
		}
	}
	return false
}
