package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/latch-proxy/latch/balancer"
)

// decision is where one request goes and what the client is told about it.
type decision struct {
	route  *route
	member int32
	reason reason
	// setCookie asks for the member's sticky cookie on the response.
	setCookie bool
	tls       bool
	// entry is the entrypoint's index, for metrics.
	entry uint16
	// unlisted, when set, is a backend a valid token named that this
	// table does not list (member is then -1).
	unlisted *upstream
}

func (d *decision) upstream() *upstream {
	if d.unlisted != nil {
		return d.unlisted
	}
	return d.route.pool.members[d.member].up
}

// stuck reports whether d is an existing session on a strict route, which
// must fail rather than move.
func (d *decision) stuck() bool {
	return d.route.strict && (d.reason == reasonHit || d.reason == reasonDrainingHold || d.reason == reasonSID)
}

// serve is the request handler of every entrypoint.
func (s *Server) serve(ctx *fasthttp.RequestCtx, entrypoint string) {
	defer s.survive(ctx)
	start := ctx.Time() // read now: the server's LazyRequestTime
	d := decision{member: -1, entry: s.metrics.entry(entrypoint)}
	s.handle(ctx, entrypoint, &d, start)
	s.metrics.observe(&d, ctx.Response.StatusCode(), start)
}

// handle routes, decides and answers one request, filling in d.
func (s *Server) handle(ctx *fasthttp.RequestCtx, entrypoint string, d *decision, start time.Time) {
	if !s.admit(ctx, entrypoint, d, start) {
		return
	}
	if ctx.Request.Header.ConnectionUpgrade() && len(ctx.Request.Header.PeekBytes(hdrUpgrade)) > 0 {
		s.upgrade(ctx, d, start)
		return
	}
	s.forward(ctx, d, start)
}

// admit does everything that comes before a backend: it refuses what must
// be refused, routes, and decides the backend (d). It reports whether the
// request goes on to d's backend; when not, ctx holds latch's own answer,
// already logged. Both HTTP paths, fasthttp's and the event loops', run it.
func (s *Server) admit(ctx *fasthttp.RequestCtx, entrypoint string, d *decision, start time.Time) bool {
	if ambiguous(ctx) {
		s.reply(ctx, start, nil, fasthttp.StatusBadRequest, msgAmbiguous)
		ctx.SetConnectionClose()
		return false
	}
	if port, ok := s.redirects[entrypoint]; ok {
		s.redirect(ctx, port, start)
		return false
	}
	// Streamed bodies skip fasthttp's own size check: a declared length
	// over the limit is refused before anything reaches a backend; a
	// chunked body is counted as it streams (limitBody, in forward).
	if ctx.Request.Header.ContentLength() > s.opts.Limits.MaxBodyBytes {
		s.reply(ctx, start, nil, fasthttp.StatusRequestEntityTooLarge, msgTooLarge)
		ctx.SetConnectionClose()
		return false
	}
	t := s.table.Load()
	if t == nil {
		s.reply(ctx, start, nil, fasthttp.StatusServiceUnavailable, msgNotReady)
		return false
	}
	id, ok := t.byEntry[entrypoint].Match((*reqView)(ctx))
	if !ok {
		s.reply(ctx, start, nil, fasthttp.StatusNotFound, msgNoRoute)
		return false
	}
	d.route, d.tls = t.routes[id], s.isTLS(ctx)
	return s.decide(ctx, d, start.UnixNano())
}

// decide fills in d's member: the sticky backend when the cookie names a
// usable one, else a new pick. It answers the request itself and returns
// false when there is no backend to send it to.
func (s *Server) decide(ctx *fasthttp.RequestCtx, d *decision, now int64) bool {
	r := d.route
	if r.sticky != nil {
		token := requestCookie(&ctx.Request.Header, r.sticky.name)
		d.member, d.reason, d.setCookie = r.sticky.lookup(r.pool, s.opts.Keyring, token, now)
		if d.member >= 0 {
			return true
		}
		if d.reason == reasonBackendGone && r.pool.unlisted {
			if up := s.unlisted.resolve(r.pool, s.opts.Keyring, token, now); up != nil {
				d.unlisted, d.reason, d.setCookie = up, reasonHit, false
				return true
			}
		}
		if s.sessionBySID(ctx, d, now) {
			return true
		}
		if r.strict && d.reason == reasonBackendGone {
			s.reply(ctx, time.Unix(0, now), d, fasthttp.StatusServiceUnavailable, msgStickyGone)
			return false
		}
		d.setCookie = true
	}
	b := r.policy.Pick(r.pool.candidates(), now, nil)
	if b == nil {
		s.reply(ctx, time.Unix(0, now), d, fasthttp.StatusServiceUnavailable, msgNoBackend)
		return false
	}
	d.member = r.pool.byBackend[b]
	return true
}

// sessionBySID puts d on the backend that opened the Engine.IO session the
// request names in its query, when latch saw that session open and the
// backend may still hold it: a client without a usable cookie stays with
// its session. The client gets the member's cookie too.
func (s *Server) sessionBySID(ctx *fasthttp.RequestCtx, d *decision, now int64) bool {
	sid := engineIOSID(ctx.QueryArgs())
	if sid == nil {
		return false
	}
	b := s.sids.get(sid)
	if b == nil {
		return false
	}
	p := d.route.pool
	i, ok := p.byBackend[b]
	if !ok {
		return false
	}
	if m, _, _ := p.hold(i, now, false); m < 0 {
		return false
	}
	d.member, d.reason, d.setCookie = i, reasonSID, true
	return true
}

// repick moves d to another backend after failed, for a retry. It reports
// whether there was one. A strict route never moves an existing session.
func (s *Server) repick(d *decision, failed *balancer.Backend, now int64) bool {
	r := d.route
	if d.stuck() {
		return false
	}
	b := r.policy.Pick(r.pool.candidates(), now, failed)
	if b == nil || b == failed {
		return false
	}
	d.member, d.unlisted = r.pool.byBackend[b], nil
	if r.sticky != nil {
		d.reason, d.setCookie = reasonBackendGone, true
	}
	return true
}

// forward proxies a plain HTTP request. The response body is streamed to
// the client as the backend sends it.
func (s *Server) forward(ctx *fasthttp.RequestCtx, d *decision, start time.Time) {
	req := &ctx.Request
	s.outbound(ctx, d)

	resp := fasthttp.AcquireResponse()
	up := d.upstream()
	// Ask before Do: fasthttp drops a body stream once it has sent it.
	streamed := req.IsBodyStream()
	lim := s.limitBody(req)
	up.backend.Acquire()
	err := up.client.Do(req, resp)
	if lim != nil && s.releaseLimit(req, lim) && err != nil {
		// A chunked body crossed the limit while the request was being
		// written. fasthttp closes a backend connection whose request
		// write failed instead of pooling it, so the backend saw at most
		// a truncated body (nothing at all when the first read crossed:
		// the header goes out with the first chunk), and HostClient reads
		// no answer before the whole request is written, so the client
		// has had no byte yet.
		up.backend.Release()
		fasthttp.ReleaseResponse(resp)
		s.reply(ctx, start, d, fasthttp.StatusRequestEntityTooLarge, msgTooLarge)
		ctx.SetConnectionClose()
		return
	}
	if err != nil && isDialError(err) {
		s.failed(up, start)
	}
	if err != nil && retryElsewhere(req, streamed, err) && s.repick(d, up.backend, start.UnixNano()) {
		up.backend.Release()
		up = d.upstream()
		up.backend.Acquire()
		resp.Reset()
		err = up.client.Do(req, resp)
	}
	if err != nil {
		up.backend.Release()
		fasthttp.ReleaseResponse(resp)
		status, msg := fasthttp.StatusBadGateway, msgBadGateway
		switch {
		case d.stuck() && isDialError(err):
			status, msg = fasthttp.StatusServiceUnavailable, msgStickyGone
		case errors.Is(err, fasthttp.ErrNoFreeConns):
			status, msg = fasthttp.StatusServiceUnavailable, msgBackendBusy
		case errors.Is(err, fasthttp.ErrTimeout) || errors.Is(err, fasthttp.ErrDialTimeout):
			status, msg = fasthttp.StatusGatewayTimeout, msgTimeout
		}
		s.log.Debug("upstream request failed", "route", d.route.name, "backend", up.backend.Addr(), "err", err)
		s.reply(ctx, start, d, status, msg)
		return
	}

	succeeded(up)
	learnSID := s.inbound(ctx, d, &resp.Header)
	status := resp.StatusCode()
	if resp.BodyStream() == nil {
		// The whole answer is here (transport): a body that came with its
		// header, or none (HEAD, 204, 304), and the copied header's
		// Content-Length stands.
		body := resp.Body()
		if learnSID {
			l := sidLearner{table: &s.sids, backend: up.backend}
			l.see(body)
		}
		if len(body) > 0 {
			resp.SwapBody(ctx.Response.SwapBody(body)) // no copy
		}
		fasthttp.ReleaseResponse(resp)
		up.backend.Release()
		s.access.record(start, d.route, up.backend, status, d.reason, ctx.Method(), ctx.Path(), remoteAddr(ctx), int64(len(body)))
		return
	}
	// The body is still on its way: the header goes to the client at once.
	// A chunked or read-until-close body goes on chunked, each chunk
	// flushed as it comes, so SSE events are not held; a body of declared
	// length goes out as fasthttp's 4 KB writer fills.
	ctx.Response.ImmediateHeaderFlush = true
	size := max(resp.Header.ContentLength(), -1)
	bs := s.acquireStream()
	bs.s, bs.resp, bs.r, bs.backend = s, resp, resp.BodyStream(), up.backend
	if learnSID {
		bs.sid = sidLearner{table: &s.sids, backend: up.backend}
	}
	bs.start, bs.route, bs.reason, bs.peer = start, d.route, d.reason, remoteAddr(ctx)
	bs.method = append(bs.method[:0], ctx.Method()...)
	bs.path = append(bs.path[:0], ctx.Path()...)
	ctx.Response.SetBodyStream(bs, size)
}

// outbound readies a plain request for d's backend: hop-by-hop headers out,
// X-Forwarded-* in.
func (s *Server) outbound(ctx *fasthttp.RequestCtx, d *decision) {
	stripRequestHopByHop(&ctx.Request.Header, false)
	s.setForwarded(ctx, d.tls)
	if ctx.IsTLS() {
		// TLS ends at latch: backends are spoken to in plain HTTP, and
		// HostClient refuses a request whose scheme differs from its own.
		ctx.Request.URI().SetSchemeBytes(valHTTP)
	}
}

// inbound makes the backend's response header h the client's: copied,
// hop-by-hop headers out, the sticky cookie in when d asks for it. It
// reports whether the body opens an Engine.IO session whose sid latch
// should learn.
func (s *Server) inbound(ctx *fasthttp.RequestCtx, d *decision, h *fasthttp.ResponseHeader) (learnSID bool) {
	copyResponseHeader(&ctx.Response.Header, h)
	stripResponseHopByHop(&ctx.Response.Header, false)
	s.addCookie(ctx, d)
	return d.route.sticky != nil && h.StatusCode() == fasthttp.StatusOK && opensEngineIOSession(ctx)
}

// addCookie sets the route's sticky cookie for d's member when d asks for it.
func (s *Server) addCookie(ctx *fasthttp.RequestCtx, d *decision) {
	if !d.setCookie || d.route.sticky == nil {
		return
	}
	i := 0
	if d.tls {
		i = 1
	}
	ctx.Response.Header.AddBytesKV(hdrSetCookie, d.route.sticky.cookies[d.member][i])
}

// setForwarded sets X-Forwarded-For, -Proto and -Host. Values a client sent
// are kept (and For appended to) only when the peer is a trusted proxy.
// The names are set as they are: they are canonical, and so are the names
// of a parsed request, whatever case the client used.
func (s *Server) setForwarded(ctx *fasthttp.RequestCtx, tls bool) {
	h := &ctx.Request.Header
	ip := remoteAddr(ctx)
	trusted := s.trusted(ip)
	var buf [256]byte
	b := buf[:0]
	if trusted {
		if prior := h.PeekBytes(hdrXForwardedFor); len(prior) > 0 {
			b = append(append(b, prior...), commaSpace...)
		}
	}
	b = ip.AppendTo(b)
	h.SetCanonical(hdrXForwardedFor, b)
	if !trusted || len(h.PeekBytes(hdrXForwardedProto)) == 0 {
		proto := valHTTP
		if tls {
			proto = valHTTPS
		}
		h.SetCanonical(hdrXForwardedProto, proto)
	}
	if !trusted || len(h.PeekBytes(hdrXForwardedHost)) == 0 {
		h.SetCanonical(hdrXForwardedHost, h.Host())
	}
}

// isTLS reports whether the client reached latch over TLS, directly or
// through a trusted proxy that says so.
func (s *Server) isTLS(ctx *fasthttp.RequestCtx) bool {
	if ctx.IsTLS() {
		return true
	}
	p := ctx.Request.Header.PeekBytes(hdrXForwardedProto)
	return len(p) > 0 && bytes.EqualFold(p, valHTTPS) && s.trusted(remoteAddr(ctx))
}

func (s *Server) trusted(ip netip.Addr) bool {
	for _, p := range s.opts.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func isIdempotent(req *fasthttp.Request) bool {
	h := &req.Header
	return h.IsGet() || h.IsHead() || h.IsOptions() || h.IsPut() || h.IsDelete() || h.IsTrace()
}

// retryElsewhere reports whether a request that failed with err may go to
// another backend: its method is idempotent, so repeating it is harmless
// (RFC 9110 section 9.2.2), and it had no body streaming from the client
// (streamed, as it was before the first attempt), which cannot be sent
// twice; and it failed to connect, or its connections broke before an
// answer came (a backend killed with pooled connections open fails every
// retry HostClient makes on them). Not after a timeout, which
// --upstream-timeout bounds for the whole exchange, nor when the backend's
// connection queue is full, which is answered 503.
func retryElsewhere(req *fasthttp.Request, streamed bool, err error) bool {
	if !isIdempotent(req) || streamed {
		return false
	}
	return isDialError(err) || !isTimeout(err) && !errors.Is(err, fasthttp.ErrNoFreeConns)
}

// isTimeout reports whether err is a timeout, fasthttp's or the network's.
func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.Is(err, fasthttp.ErrDialTimeout) || errors.As(err, &te) && te.Timeout()
}

// retryOnDeadConn tells a HostClient whether to try a failed request again
// on another connection to the same backend: an idempotent one, when a
// pooled connection turned out dead (the backend closed or reset it), as
// fasthttp does by default; never after a timeout, since the backend has
// the request already and --upstream-timeout bounds the whole answer
// (fasthttp's default would wait it out up to five times).
func retryOnDeadConn(req *fasthttp.Request, _ int, err error) (resetTimeout, retry bool) {
	return false, !isTimeout(err) && isIdempotent(req)
}

// isDialError reports whether err happened before the request could reach
// the backend, so that retrying elsewhere cannot repeat a side effect.
func isDialError(err error) bool {
	if errors.Is(err, fasthttp.ErrDialTimeout) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// bodyStream hands a backend's response body to the client and, once the
// client has it all (or went away), returns the connection to the pool,
// releases the backend and writes the access log line.
type bodyStream struct {
	s       *Server
	resp    *fasthttp.Response
	r       io.Reader
	backend *balancer.Backend
	route   *route
	reason  reason
	start   time.Time
	peer    netip.Addr
	n       int64 // body bytes read, for the access log
	sid     sidLearner
	// method and path are copies, kept for the access log; their buffers
	// are reused across requests.
	method, path []byte
}

func (s *Server) acquireStream() *bodyStream {
	if v := s.streams.Get(); v != nil {
		return v.(*bodyStream)
	}
	return &bodyStream{}
}

func (b *bodyStream) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	b.sid.see(p[:n])
	return n, err
}

// Close is called by fasthttp exactly once, after the body was written or
// writing failed.
func (b *bodyStream) Close() error {
	s := b.s
	status := b.resp.StatusCode()
	b.resp.CloseBodyStream()
	fasthttp.ReleaseResponse(b.resp)
	b.backend.Release()
	s.access.record(b.start, b.route, b.backend, status, b.reason, b.method, b.path, b.peer, b.n)
	*b = bodyStream{method: b.method[:0], path: b.path[:0]}
	s.streams.Put(b)
	return nil
}
