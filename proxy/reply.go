package proxy

import (
	"time"

	"github.com/valyala/fasthttp"

	"github.com/latch-proxy/latch/balancer"
)

// Bodies of the answers latch gives itself, declared once.
var (
	msgNotReady    = []byte("latch: no routing table yet\n")
	msgNoRoute     = []byte("latch: no route matches this request\n")
	msgNoBackend   = []byte("latch: no backend available\n")
	msgStickyGone  = []byte("latch: the sticky backend is gone and the route is strict\n")
	msgBadGateway  = []byte("latch: the backend failed\n")
	msgBackendBusy = []byte("latch: the backend is at its connection limit\n")
	msgTimeout     = []byte("latch: the backend did not answer in time\n")
	msgTooLarge    = []byte("latch: request body too large\n")
	textPlain      = []byte("text/plain; charset=utf-8")
)

// reply answers the request from latch itself and logs it. d may be nil
// when no route matched.
func (s *Server) reply(ctx *fasthttp.RequestCtx, start time.Time, d *decision, status int, body []byte) {
	ctx.Response.Reset()
	ctx.SetStatusCode(status)
	ctx.Response.Header.SetContentTypeBytes(textPlain)
	ctx.Response.SetBodyRaw(body)
	var (
		r  *route
		b  *balancer.Backend
		rs = reasonNone
	)
	if d != nil {
		r, rs = d.route, d.reason
		if d.member >= 0 {
			b = d.upstream().backend
		}
	}
	s.access.record(start, r, b, status, rs, ctx.Method(), ctx.Path(), remoteAddr(ctx), int64(len(body)))
}
