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

// stripRequestHopByHop removes hop-by-hop headers, including every header
// the client named in Connection. When keepUpgrade is set, Upgrade and
// "Connection: Upgrade" survive, for a WebSocket handshake. It allocates
// nothing.
func stripRequestHopByHop(h *fasthttp.RequestHeader, keepUpgrade bool) {
	var buf [256]byte
	for _, name := range dropList(&buf, h.PeekBytes(hdrConnection), keepUpgrade) {
		if name == nil {
			break
		}
		h.DelBytes(name)
	}
	if keepUpgrade {
		h.SetBytesKV(hdrConnection, valUpgrade)
	}
}

// stripResponseHopByHop is stripRequestHopByHop for a response.
func stripResponseHopByHop(h *fasthttp.ResponseHeader, keepUpgrade bool) {
	var buf [256]byte
	for _, name := range dropList(&buf, h.PeekBytes(hdrConnection), keepUpgrade) {
		if name == nil {
			break
		}
		h.DelBytes(name)
	}
	if keepUpgrade {
		h.SetBytesKV(hdrConnection, valUpgrade)
	}
}

// dropList lists the headers to remove: the names in a Connection value
// (copied into buf first, because deleting headers may move header bytes)
// and the fixed hop-by-hop set, minus Upgrade and Connection when
// keepUpgrade is set. Unused slots are nil. The two callers stay separate
// functions on concrete types: through an interface the compiler could not
// keep buf on the stack.
func dropList(buf *[256]byte, conn []byte, keepUpgrade bool) (out [maxConnectionTokens + 9][]byte) {
	n := 0
	for _, name := range commaTokens(buf[:copy(buf[:], conn)]) {
		if name == nil {
			break
		}
		if keepUpgrade && bytes.EqualFold(name, hdrUpgrade) {
			continue
		}
		out[n] = name
		n++
	}
	for _, name := range hopByHop {
		if keepUpgrade && (bytes.Equal(name, hdrUpgrade) || bytes.Equal(name, hdrConnection)) {
			continue
		}
		out[n] = name
		n++
	}
	return out
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
