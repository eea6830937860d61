package proxy

import (
	"bytes"
	"errors"
	"net"
	"runtime/debug"

	"github.com/valyala/fasthttp"
)

var (
	msgAmbiguous = []byte("latch: ambiguous request framing or folded header\n")
	hdrCLPrefix  = []byte("content-length:")
)

// ambiguous reports whether a request that fasthttp parsed must still be
// refused because another server could read it differently (request
// smuggling): a header continued by obs-fold, a header name that is not an
// RFC 9110 token, or Transfer-Encoding together with Content-Length, which
// fasthttp resolves in favour of chunked. They are refused with 400 and the
// connection closed. One pass over the raw header bytes, no allocation.
func ambiguous(ctx *fasthttp.RequestCtx) bool {
	chunked := ctx.Request.Header.ContentLength() == -1
	for line := range bytes.SplitSeq(ctx.Request.Header.RawHeaders(), []byte("\n")) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			return true // obs-fold
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return true
		}
		for _, c := range line[:colon] {
			if !isTokenChar(c) {
				return true
			}
		}
		if chunked && bytes.EqualFold(line[:colon+1], hdrCLPrefix) {
			return true
		}
	}
	return false
}

// isTokenChar reports whether c may appear in an RFC 9110 token.
func isTokenChar(c byte) bool { return tokenChars[c] }

// tokenChars marks the bytes of RFC 9110's tchar; it is never written
// after initialization.
var tokenChars = func() (t [256]bool) {
	for c := range 256 {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			t[c] = true
		}
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] = true
	}
	return t
}()

// parseError answers requests fasthttp could not parse, and always closes
// the connection: after a framing error nothing that follows on it can be
// trusted.
func parseError(ctx *fasthttp.RequestCtx, err error) {
	ctx.SetConnectionClose()
	var small *fasthttp.ErrSmallBuffer
	var op *net.OpError
	switch {
	case errors.As(err, &small):
		ctx.Error("latch: request header too large\n", fasthttp.StatusRequestHeaderFieldsTooLarge)
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		ctx.Error("latch: request body too large\n", fasthttp.StatusRequestEntityTooLarge)
	case errors.As(err, &op) && op.Timeout():
		ctx.Error("latch: request timeout\n", fasthttp.StatusRequestTimeout)
	default:
		ctx.Error("latch: malformed request\n", fasthttp.StatusBadRequest)
	}
}

// survive is deferred by every handler: a bug that panics on some input
// costs that request a 500 and a logged stack, never the process and the
// tunnels it holds. fasthttp itself does not recover handler panics.
func (s *Server) survive(ctx *fasthttp.RequestCtx) {
	if r := recover(); r != nil {
		s.log.Error("handler panic; answering 500", "path", string(ctx.Path()), "panic", r, "stack", string(debug.Stack()))
		ctx.Error("latch: internal error\n", fasthttp.StatusInternalServerError)
		ctx.SetConnectionClose()
	}
}

// recovering wraps h with survive.
func (s *Server) recovering(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		defer s.survive(ctx)
		h(ctx)
	}
}
