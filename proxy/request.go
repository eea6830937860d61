package proxy

import (
	"net/netip"

	"github.com/valyala/fasthttp"

	"github.com/latch-proxy/latch/proxy/rules"
)

// reqView lets the rule matcher read a fasthttp request without copying:
// a *reqView is a *fasthttp.RequestCtx under another name.
type reqView fasthttp.RequestCtx

var _ rules.Request = (*reqView)(nil)

func (v *reqView) ctx() *fasthttp.RequestCtx { return (*fasthttp.RequestCtx)(v) }

func (v *reqView) Host() []byte              { return v.ctx().Request.Header.Host() }
func (v *reqView) Path() []byte              { return v.ctx().Path() }
func (v *reqView) Method() []byte            { return v.ctx().Method() }
func (v *reqView) Header(name []byte) []byte { return v.ctx().Request.Header.PeekBytes(name) }
func (v *reqView) ClientIP() netip.Addr      { return remoteAddr(v.ctx()) }

func (v *reqView) Query(name []byte) ([]byte, bool) {
	args := v.ctx().QueryArgs()
	val := args.PeekBytes(name)
	if val != nil {
		return val, true
	}
	return nil, args.HasBytes(name)
}

// remoteAddr is the peer's IP, without allocating: the one the swept
// connection or the event loop noted when it was accepted, or else
// fasthttp's.
func remoteAddr(ctx *fasthttp.RequestCtx) netip.Addr {
	switch c := ctx.Conn().(type) {
	case *sweptConn:
		return c.peer
	case *laneConnInfo:
		return c.peer
	}
	a, _ := netip.AddrFromSlice(ctx.RemoteIP())
	return a.Unmap()
}
