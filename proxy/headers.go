package proxy

import (
	"bytes"
	"math/bits"

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
	hdrCookie            = []byte("Cookie")
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
// also managed by fasthttp itself. Connection comes first: its bit is
// hopConnection.
var hopByHop = [][]byte{
	hdrConnection, hdrKeepAlive, hdrProxyConnection, hdrProxyAuthenticate,
	hdrProxyAuthz, hdrTE, hdrTrailer, hdrTransferEncoding, hdrUpgrade,
}

// stripRequestHopByHop removes hop-by-hop headers, including every header
// the client named in Connection. When keepUpgrade is set, Upgrade and
// "Connection: Upgrade" survive, for a WebSocket handshake. It deletes only
// the names the request carries, found in one pass over its raw header,
// and allocates nothing.
func stripRequestHopByHop(h *fasthttp.RequestHeader, keepUpgrade bool) {
	present := hopAll // a header built in code has no raw form to scan
	if raw := h.RawHeaders(); len(raw) > 0 {
		present = rawHops(raw)
	}
	if h.ConnectionClose() {
		present |= hopConnection // implied by HTTP/1.0, or set by hand
	}
	if present == 0 && !keepUpgrade {
		return // the common case: nothing to strip
	}
	var buf [256]byte
	var conn []byte
	if present&hopConnection != 0 {
		conn = h.PeekBytes(hdrConnection)
	}
	for _, name := range dropList(&buf, conn, present, keepUpgrade) {
		if name == nil {
			break
		}
		h.DelBytes(name)
	}
	if keepUpgrade {
		h.SetBytesKV(hdrConnection, valUpgrade)
	}
}

// stripResponseHopByHop is stripRequestHopByHop for a response; the names
// it carries are found by walking its parsed header.
func stripResponseHopByHop(h *fasthttp.ResponseHeader, keepUpgrade bool) {
	var present uint16
	if len(h.PeekBytes(hdrTrailer)) > 0 {
		present = hopAll // All would allocate to render Trailer
	} else {
		for name := range h.All() {
			present |= hopBit(name)
		}
	}
	if present == 0 && !keepUpgrade {
		return // the common case: nothing to strip
	}
	var buf [256]byte
	var conn []byte
	if present&hopConnection != 0 {
		conn = h.PeekBytes(hdrConnection)
	}
	for _, name := range dropList(&buf, conn, present, keepUpgrade) {
		if name == nil {
			break
		}
		h.DelBytes(name)
	}
	if keepUpgrade {
		h.SetBytesKV(hdrConnection, valUpgrade)
	}
}

// copyResponseHeader copies a backend's response header to the client's.
// fasthttp would otherwise invent a Content-Type (text/plain) for a
// response that came without one, which changes how a browser treats it.
func copyResponseHeader(dst, src *fasthttp.ResponseHeader) {
	src.CopyTo(dst)
	dst.SetNoDefaultContentType(true)
}

// Bits of hopByHop's names, by index, in a presence mask.
const (
	hopConnection uint16 = 1 << 0
	hopAll        uint16 = 1<<9 - 1
)

// hopByLen[n] marks the hopByHop names n bytes long (none is 32 or more),
// so that most header names are turned away by their length alone.
var hopByLen = func() (t [32]uint16) {
	for i, h := range hopByHop {
		t[len(h)] |= 1 << i
	}
	return t
}()

// hopBit returns name's bit when it is one of hopByHop (any case), else 0.
func hopBit(name []byte) uint16 {
	if len(name) >= len(hopByLen) {
		return 0
	}
	for m := hopByLen[len(name)]; m != 0; m &= m - 1 {
		i := bits.TrailingZeros16(m)
		if bytes.EqualFold(hopByHop[i], name) {
			return 1 << i
		}
	}
	return 0
}

// rawHops returns the hop-by-hop names present in a raw header block
// (lines of "Name: value"; malformed ones were refused before).
func rawHops(raw []byte) uint16 {
	var present uint16
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		if colon := bytes.IndexByte(line, ':'); colon > 0 {
			present |= hopBit(line[:colon])
		}
	}
	return present
}

// dropList lists the headers to remove: the names in a Connection value
// (copied into buf first, because deleting headers may move header bytes)
// and those of the fixed hop-by-hop set that present marks, minus Upgrade
// and Connection when keepUpgrade is set. Unused slots are nil. The two
// callers stay separate functions on concrete types: through an interface
// the compiler could not keep buf on the stack.
func dropList(buf *[256]byte, conn []byte, present uint16, keepUpgrade bool) (out [maxConnectionTokens + 9][]byte) {
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
	for i, name := range hopByHop {
		if present&(1<<i) == 0 || keepUpgrade && (bytes.Equal(name, hdrUpgrade) || bytes.Equal(name, hdrConnection)) {
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
