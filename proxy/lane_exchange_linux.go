//go:build linux

package proxy

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// hconn is one socket on an HTTP loop: a client's connection, or a
// backend connection (back) that is pooled or carries a client's exchange
// (peer links the two while it does).
type hconn struct {
	fd       int
	slot     int32
	back     bool
	in, out  []byte // bytes read and not yet used; bytes not yet written
	watchOut bool
	readable bool  // an event said the socket may hold bytes
	hup      bool  // an event reported the peer's end or an error
	eof      bool  // a read returned the peer's end
	last     int64 // Unix ns of the last request start (client) or release (backend)
	peer     *hconn

	// A client's.
	entry   *laneEntry
	info    laneConnInfo
	ctx     *fasthttp.RequestCtx
	ex      exchange
	closing bool // close once the answer in flight is out
	linger  bool // the last answer is out: what comes is dropped until the client closes

	// A backend connection's.
	up         *upstream
	tunnel     bool // dialed for an upgrade: outside the pool
	connecting bool
	reused     bool  // it served an exchange before this one
	due        int64 // Unix ns by which a connect must finish
}

// exchange is the request a client connection has in flight.
type exchange struct {
	active bool
	d      decision
	start  time.Time
	// req is the request as sent, kept until the answer's first byte so
	// that it can be sent again on a fresh connection (retry) when a
	// pooled one turns out dead.
	req      []byte
	bodyLeft int64 // request body bytes still to come from the client
	retry    bool  // idempotent, with its whole body in req
	moved    bool  // already moved to another backend once
	tries    int
	upgrade  bool  // an upgrade, on a backend connection of its own
	queued   bool  // waiting for a connection to a backend at its limit
	queueDue int64 // Unix ns: then it is answered 503
	head     bool  // the answer's head has gone to the client
	isHead   bool  // a HEAD request: no answer body
	frame    bodyFrame
	status   int
	n        int64 // answer body bytes, for the access log
	sid      sidLearner
	keep     bool // the backend connection may carry another request after this one
}

// localAddr is the local address of c's socket, while it is open.
func (c *hconn) localAddr() netip.AddrPort {
	if c.slot >= 0 {
		if lsa, err := unix.Getsockname(c.fd); err == nil {
			ap, _ := sockaddrAddrPort(lsa)
			return ap
		}
	}
	return netip.AddrPort{}
}

func sockaddrAddrPort(sa unix.Sockaddr) (netip.AddrPort, bool) {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)), true
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)), true
	}
	return netip.AddrPort{}, false
}

// clientEvent moves a client connection on: its pending answer out, its
// request body on to the backend, or its next request in.
func (l *hloop) clientEvent(c *hconn, writable bool) {
	if writable && len(c.out) > 0 {
		if !l.flush(c) {
			l.abort(c)
			return
		}
		if len(c.out) > 0 {
			return
		}
		if c.closing && !c.ex.active {
			l.lastAnswerSent(c)
			return
		}
		if b := c.peer; c.ex.active && c.ex.head && b != nil {
			l.answer(b) // the answer was held back while the client could not take more
			return
		}
	}
	if c.ex.active {
		switch {
		case c.ex.bodyLeft > 0:
			l.upload(c)
		case c.hup && c.readable:
			// The client ended its side while its request is in flight (a
			// reset, or a half-close after the request): as HAProxy does
			// by default, the request goes on and the answer is the
			// connection's last, unless the socket failed (nobody to
			// answer). Bytes the client sent before its end are kept.
			if !l.fill(c, readBufferSize+1) {
				l.abort(c)
				return
			}
			if c.eof {
				c.closing = true
			}
		}
		return // further requests wait for this one's answer
	}
	l.nextRequest(c)
}

// nextRequest reads and starts the client's next request, if it is here.
func (l *hloop) nextRequest(c *hconn) {
	for !c.ex.active && !c.closing {
		had := len(c.in)
		if !l.fill(c, readBufferSize+1) {
			l.closeClient(c)
			return
		}
		if had == 0 && len(c.in) > 0 {
			c.last = l.now // the read timeout runs from the head's first byte
		}
		end := bytes.Index(c.in, crlfCRLF)
		if end < 0 {
			switch {
			case len(c.in) > readBufferSize:
				l.handOff(c) // fasthttp answers 431
			case !plausibleStart(c.in):
				l.handOff(c) // fasthttp refuses it now, not after the read timeout
			case c.eof || c.hup && !c.readable:
				if len(c.in) > 0 {
					l.handOff(c) // fasthttp says what is wrong with the rest
					return
				}
				c.closing = true
				if len(c.out) == 0 {
					l.closeClient(c)
				} // else the answer still going out closes it (answer, clientEvent)
			}
			return
		}
		if l.ln.draining.Load() && !c.ex.active {
			c.closing = true // the answer says Connection: close
		}
		if !l.start(c, end+len(crlfCRLF)) {
			return
		}
	}
}

var (
	crlfCRLF = []byte("\r\n\r\n")
	http11   = []byte(" HTTP/1.1\r")
)

// plausibleStart reports whether the start of a request head, not yet
// whole, may still be one the loops serve: its request line, once
// complete, ends in HTTP/1.1.
func plausibleStart(in []byte) bool {
	i := bytes.IndexByte(in, '\n')
	return i < 0 || bytes.HasSuffix(in[:i], http11)
}

// start parses the request head at the start of c.in (n bytes) and serves
// it, or hands the connection to fasthttp. It reports whether c is still
// the loop's.
func (l *hloop) start(c *hconn, n int) bool {
	ctx := c.ctx
	ctx.Request.Reset()
	ctx.Response.Reset()
	l.src.Reset(c.in[:n])
	l.br.Reset(&l.src)
	h := &ctx.Request.Header
	if err := h.Read(l.br); err != nil || !laneServes(h, l.s.engine != nil) {
		l.handOff(c)
		return false
	}
	ctx.Response.Header.SetNoDefaultContentType(true)
	c.in = c.in[:copy(c.in, c.in[n:])]
	ex := &c.ex
	// The loop's clock, read once per batch of events, as HAProxy reads
	// its once per turn of its loop.
	*ex = exchange{req: ex.req[:0], d: decision{member: -1, entry: c.entry.metric}, start: time.Unix(0, l.now)}
	if h.ConnectionClose() || c.eof {
		c.closing = true
	}
	if !l.s.admit(ctx, c.entry.name, &ex.d, ex.start) {
		l.s.metrics.observe(&ex.d, ctx.Response.StatusCode(), ex.start)
		if ctx.Response.ConnectionClose() {
			c.closing = true
		}
		l.replyLocal(c)
		return c.slot >= 0
	}
	ex.active = true
	if isUpgrade(h) {
		l.upgrade(c)
	} else {
		l.forward(c)
	}
	return c.slot >= 0
}

// laneServes reports whether a loop serves a request with this head
// itself; any other goes to fasthttp. An upgrade is the loop's when the
// tunnel engine runs (tunnels) and the request has no body.
func laneServes(h *fasthttp.RequestHeader, tunnels bool) bool {
	if !h.IsHTTP11() || h.ContentLength() == -1 || h.IsConnect() ||
		len(h.PeekBytes(hdrExpect)) > 0 || len(h.PeekBytes(hdrTransferEncoding)) > 0 {
		return false
	}
	return len(h.PeekBytes(hdrUpgrade)) == 0 || tunnels && h.ContentLength() <= 0
}

// isUpgrade reports whether a request asks to upgrade, as handle decides.
func isUpgrade(h *fasthttp.RequestHeader) bool {
	return h.ConnectionUpgrade() && len(h.PeekBytes(hdrUpgrade)) > 0
}

var hdrExpect = []byte("Expect")

// replyLocal writes latch's own answer, in ctx.Response, to the client.
func (l *hloop) replyLocal(c *hconn) {
	resp := &c.ctx.Response
	if c.closing {
		resp.SetConnectionClose()
	}
	body := resp.Body()
	if !bodiless(resp.StatusCode()) {
		resp.Header.SetContentLength(len(body)) // as fasthttp's Response.Write frames it
	}
	var buf [512]byte
	out := resp.Header.AppendBytes(buf[:0])
	if !c.ctx.IsHead() {
		out = append(out, body...)
	}
	if !l.send(c, out) {
		l.closeClient(c)
		return
	}
	if c.closing && len(c.out) == 0 {
		l.lastAnswerSent(c)
	}
}

// forward sends the admitted request to its backend.
func (l *hloop) forward(c *hconn) {
	ex, ctx := &c.ex, c.ctx
	l.s.outbound(ctx, &ex.d)
	l.serialize(c)
	ex.retry = ex.bodyLeft == 0 && isIdempotent(&ctx.Request)
	l.dispatch(c, false)
}

// upgrade sends an admitted upgrade request (a WebSocket handshake) on a
// fresh backend connection, as Server.upgrade does; a 101 joins the two
// connections in the tunnel engine (joinTunnel), any other answer passes
// back as a normal one.
func (l *hloop) upgrade(c *hconn) {
	ex, ctx := &c.ex, c.ctx
	stripRequestHopByHop(&ctx.Request.Header, true)
	l.s.setForwarded(ctx, ex.d.tls)
	l.serialize(c)
	ex.upgrade = true
	up := ex.d.upstream()
	b, err := l.dial(up)
	if err != nil {
		l.s.failed(up, ex.start)
		if !l.s.repick(&ex.d, up.backend, ex.start.UnixNano()) {
			l.fail(c, fasthttp.StatusBadGateway, msgBadGateway)
			return
		}
		if up = ex.d.upstream(); up != nil {
			if b, err = l.dial(up); err != nil {
				l.s.failed(up, ex.start)
				l.fail(c, fasthttp.StatusBadGateway, msgBadGateway)
				return
			}
		}
	}
	b.tunnel = true
	up.backend.Acquire() // released when the exchange ends; the tunnel counts itself
	l.carry(c, b)
}

// serialize writes the request head, and the body bytes already read, to
// ex.req; ex.bodyLeft is what is still to come from the client.
func (l *hloop) serialize(c *hconn) {
	ex, ctx := &c.ex, c.ctx
	h := &ctx.Request.Header
	ex.isHead = h.IsHead()
	body := int64(max(h.ContentLength(), 0))
	if h.ContentLength() < 0 && !h.IsGet() && !h.IsHead() {
		h.SetContentLength(0) // as fasthttp's Request.Write frames a body-less request
	}
	// As fasthttp's Request.Write does for a parsed URI: the backend gets
	// the normalized path the rule matched (dot segments resolved, %2F
	// decoded), so no route is reached or escaped by "..", encoded slashes
	// or dot segments; and the Host the URI names.
	uri := ctx.Request.URI()
	h.SetHostBytes(uri.Host())
	h.SetRequestURIBytes(uri.RequestURI())
	ex.req = h.AppendBytes(ex.req[:0])
	now := min(body, int64(len(c.in)))
	ex.req = append(ex.req, c.in[:now]...)
	c.in = c.in[:copy(c.in, c.in[now:])]
	ex.bodyLeft = body - now
}

// dispatch sends ex.req on a connection to the decided backend: a pooled
// one unless fresh, or a new one.
func (l *hloop) dispatch(c *hconn, fresh bool) {
	ex := &c.ex
	up := ex.d.upstream()
	up.backend.Acquire()
	ex.tries++
	b, err := l.backendConn(up, fresh)
	if err == errTooManyBackendConns && l.s.opts.Limits.BackendQueueTimeout > 0 {
		// As HostClient's MaxConnWaitTimeout: the request waits for a
		// connection to free up, still counted on its backend.
		ex.queued, ex.queueDue = true, l.now+int64(l.s.opts.Limits.BackendQueueTimeout)
		p := l.pools[up]
		p.waiting = append(p.waiting, c)
		return
	}
	if err != nil {
		up.backend.Release()
		l.dialFailed(c, up, err)
		return
	}
	l.carry(c, b)
}

// carry sends c's request on b.
func (l *hloop) carry(c, b *hconn) {
	ex := &c.ex
	b.peer, c.peer = c, b
	if b.connecting {
		b.out = append(b.out[:0], ex.req...) // written once connected
		return
	}
	if !l.send(b, ex.req) {
		l.backendFailed(b, errBackendWrite)
		return
	}
	if ex.bodyLeft > 0 {
		l.upload(c)
	}
}

// dequeue takes c's request out of its backend's queue, if it waits there.
func (l *hloop) dequeue(c *hconn) {
	if !c.ex.queued {
		return
	}
	c.ex.queued = false
	if p := l.pools[c.ex.d.upstream()]; p != nil {
		if i := slices.Index(p.waiting, c); i >= 0 {
			p.waiting = slices.Delete(p.waiting, i, i+1)
		}
	}
}

// nextWaiter pops the oldest request waiting for a connection in p.
func nextWaiter(p *bpool) *hconn {
	for len(p.waiting) > 0 {
		c := p.waiting[0]
		p.waiting = slices.Delete(p.waiting, 0, 1)
		if c.slot >= 0 && c.ex.queued {
			c.ex.queued = false
			return c
		}
	}
	return nil
}

var errBackendWrite = errors.New("writing to the backend failed")

// upload moves the rest of a request body from the client to the backend,
// as far as the backend takes it.
func (l *hloop) upload(c *hconn) {
	b, ex := c.peer, &c.ex
	for ex.bodyLeft > 0 && len(b.out) == 0 && !b.connecting {
		if len(c.in) == 0 {
			if !l.fill(c, int(min(ex.bodyLeft, int64(len(l.buf))))) {
				l.abort(c)
				return
			}
			if len(c.in) == 0 {
				if c.eof || c.hup && !c.readable {
					l.abort(c)
				}
				return
			}
		}
		n := min(int64(len(c.in)), ex.bodyLeft)
		ex.bodyLeft -= n
		if !l.send(b, c.in[:n]) {
			l.backendFailed(b, errBackendWrite)
			return
		}
		c.in = c.in[:copy(c.in, c.in[n:])]
	}
}

// backendEvent moves a backend connection on: a connect finishing, a
// request going out, an answer coming in; a pooled one that stirs is
// closed (the backend closed it, or talks out of turn).
func (l *hloop) backendEvent(b *hconn, writable bool) {
	if b.peer == nil {
		l.closeBackend(b)
		return
	}
	c := b.peer
	if b.connecting {
		if !writable {
			return
		}
		if e, err := unix.GetsockoptInt(b.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || e != 0 {
			if err == nil {
				err = unix.Errno(e)
			}
			l.backendFailed(b, &net.OpError{Op: "dial", Net: "tcp", Err: err})
			return
		}
		b.connecting = false
	}
	if writable && len(b.out) > 0 {
		if !l.flush(b) {
			l.backendFailed(b, errBackendWrite)
			return
		}
	}
	if len(b.out) == 0 && c.ex.bodyLeft > 0 {
		l.upload(c)
		if b.slot < 0 || b.peer != c {
			return
		}
	}
	if b.readable || b.hup {
		l.answer(b)
	}
}

// answer reads the backend's answer and passes it to the client: the head
// once whole, made the client's by inbound, then the body as it comes.
// What is read in one go is written in one go.
func (l *hloop) answer(b *hconn) {
	c := b.peer
	l.pump(b)
	if c.slot < 0 {
		return
	}
	if !l.flush(c) {
		l.abort(c)
		return
	}
	if c.closing && !c.ex.active && len(c.out) == 0 {
		l.lastAnswerSent(c)
	}
}

// pump moves what the backend has sent onto the client's pending output,
// up to a buffer's worth (the client's next writable edge resumes it),
// and finishes the exchange at the answer's end.
func (l *hloop) pump(b *hconn) {
	c := b.peer
	ex := &c.ex
	for {
		if len(c.out) >= len(l.buf) {
			if !l.flush(c) {
				l.abort(c)
				return
			}
			if len(c.out) > 0 {
				return // clientEvent resumes once the client takes more
			}
		}
		if !ex.head {
			if !l.fill(b, readBufferSize+1) {
				l.backendFailed(b, errBackendRead)
				return
			}
			if len(b.in) > 0 {
				ex.retry = false // the backend has answered: never again
			}
			if !l.answerHead(b) {
				return
			}
			if !ex.head {
				if b.eof || b.hup && !b.readable {
					l.backendFailed(b, errBackendRead)
				}
				return
			}
			continue
		}
		if len(b.in) == 0 {
			if ex.frame.done() {
				l.finish(c)
				return
			}
			if !l.fill(b, len(l.buf)) {
				l.abort(c)
				return
			}
			if len(b.in) == 0 {
				if b.eof || b.hup && !b.readable {
					if ex.frame.mode == frameClose {
						ex.keep = false
						l.finish(c)
					} else {
						l.abort(c) // cut short
					}
				}
				return
			}
		}
		n, err := ex.frame.take(b.in, &ex.sid)
		ex.n += int64(n)
		c.out = append(c.out, b.in[:n]...)
		if err != nil {
			l.abort(c)
			return
		}
		if n < len(b.in) {
			ex.keep = false // bytes past the answer's end: never trust this connection again
		}
		b.in = b.in[:0]
	}
}

var errBackendRead = errors.New("the backend closed the connection before answering")

// answerHead turns a whole answer head at the start of b.in into the
// client's and sends it. It reports false when the exchange ended.
func (l *hloop) answerHead(b *hconn) bool {
	c := b.peer
	ex, ctx := &c.ex, c.ctx
	for {
		end := bytes.Index(b.in, crlfCRLF)
		if end < 0 {
			if len(b.in) > readBufferSize {
				l.backendFailed(b, errors.New("answer head too large"))
				return false
			}
			return true
		}
		n := end + len(crlfCRLF)
		l.src.Reset(b.in[:n])
		l.br.Reset(&l.src)
		h := &l.resp
		if err := h.Read(l.br); err != nil {
			l.backendFailed(b, err)
			return false
		}
		b.in = b.in[:copy(b.in, b.in[n:])]
		status := h.StatusCode()
		if status == fasthttp.StatusSwitchingProtocols {
			if !ex.upgrade {
				l.backendFailed(b, errors.New("101 to a request that asked no upgrade"))
				return false
			}
			l.joinTunnel(c, b)
			return false
		}
		if status >= 100 && status < 200 {
			continue // informational: dropped, as fasthttp's client does
		}
		up := ex.d.upstream()
		succeeded(up)
		ex.status = status
		learn := l.s.inbound(ctx, &ex.d, h)
		if learn {
			ex.sid = sidLearner{table: &l.s.sids, backend: up.backend}
		}
		ex.keep = !h.ConnectionClose() && !ctx.Request.Header.ConnectionClose() && !ex.upgrade
		if l.ln.draining.Load() {
			c.closing = true // shutdown: this answer is the connection's last
		}
		cl := h.ContentLength()
		switch {
		case ex.isHead || bodiless(status):
			ex.frame = bodyFrame{}
		case cl >= 0:
			ex.frame = lengthFrame(int64(cl))
		case cl == -1:
			ex.frame = bodyFrame{mode: frameChunked}
			// The hop-by-hop pass took Transfer-Encoding out; the body
			// goes on chunked as it came.
			ctx.Response.Header.SetContentLength(-1)
		default:
			// Until the backend closes: the client's connection must
			// close after it too, which is how its end is told.
			ex.frame = bodyFrame{mode: frameClose}
			c.closing = true
		}
		if c.closing {
			ctx.Response.SetConnectionClose()
		}
		ex.head = true
		c.out = ctx.Response.Header.AppendBytes(c.out) // written with what follows it
		return true
	}
}

// finish ends an exchange whose answer has all gone to the client (or
// into its pending output): the log line and the metrics, the backend
// connection back to the pool or closed, the client on to its next
// request or closed.
func (l *hloop) finish(c *hconn) {
	ex, ctx := &c.ex, c.ctx
	b := c.peer
	up := ex.d.upstream()
	l.s.access.record(ex.start, ex.d.route, up.backend, ex.status, ex.d.reason, ctx.Method(), ctx.Path(), c.info.peer, ex.n)
	l.s.metrics.observe(&ex.d, ex.status, ex.start)
	up.backend.Release()
	ex.active = false
	c.peer, c.last = nil, l.now // idle from now
	if b != nil {
		b.peer = nil
		if ex.keep && !b.eof && !b.hup && len(b.in) == 0 && len(b.out) == 0 && !l.ln.draining.Load() {
			l.pool(b)
		} else {
			l.closeBackend(b)
		}
	}
	if c.closing {
		if len(c.out) == 0 {
			l.lastAnswerSent(c)
		}
		return
	}
	l.nextRequest(c)
}

// abort ends c's exchange, if any, without an answer (the client left,
// or the answer broke off after its head went out), and closes c.
func (l *hloop) abort(c *hconn) {
	l.dequeue(c)
	if c.ex.active {
		ex := &c.ex
		ex.active = false
		ex.d.upstream().backend.Release()
		if b := c.peer; b != nil {
			b.peer = nil
			l.closeBackend(b)
		}
		c.peer = nil
	}
	l.closeClient(c)
}

// timeout answers 504 to an exchange that outlived Limits.UpstreamTimeout
// before its answer's head, or cuts it off after.
func (l *hloop) timeout(c *hconn) {
	if c.ex.head {
		l.abort(c)
		return
	}
	l.fail(c, fasthttp.StatusGatewayTimeout, msgTimeout)
}

// fail ends c's exchange, before anything of an answer went to the
// client, with latch's own answer.
func (l *hloop) fail(c *hconn, status int, msg []byte) {
	ex := &c.ex
	if b := c.peer; b != nil {
		b.peer = nil
		l.closeBackend(b)
		ex.d.upstream().backend.Release()
	}
	c.peer = nil
	ex.active = false
	l.s.reply(c.ctx, ex.start, &ex.d, status, msg)
	l.s.metrics.observe(&ex.d, status, ex.start)
	if ex.bodyLeft > 0 {
		c.closing = true // the rest of the body is still on the connection
	}
	l.replyLocal(c)
	if c.slot >= 0 && !c.closing {
		l.nextRequest(c)
	}
}

// backendFailed handles a backend connection that failed before its
// exchange's answer started: a dead pooled connection is replaced once,
// as HostClient does; a failed connect counts against the backend, and
// the request moves to another one when it may; anything else is a 502.
func (l *hloop) backendFailed(b *hconn, err error) {
	c := b.peer
	if c == nil {
		l.closeBackend(b)
		return
	}
	ex := &c.ex
	if ex.head {
		l.abort(c)
		return
	}
	reused, dial := b.reused, b.connecting || isDialError(err)
	up := ex.d.upstream()
	b.peer, c.peer = nil, nil
	l.closeBackend(b)
	up.backend.Release()
	if dial {
		l.dialFailed(c, up, err)
		return
	}
	if ex.retry && ex.tries < 5 {
		// As HostClient and forward do: a dead pooled connection is
		// replaced by a fresh one to the same backend; a fresh one that
		// broke sends the request to another backend, or, when there is
		// none to move to, to the same one again (HostClient's attempts).
		if !reused && !ex.moved && !ex.d.stuck() && l.s.repick(&ex.d, up.backend, ex.start.UnixNano()) {
			ex.moved = true
			l.dispatch(c, false)
			return
		}
		l.dispatch(c, true) // not another pooled one: they may all be dead
		return
	}
	l.s.log.Debug("upstream request failed", "route", ex.d.route.name, "backend", up.backend.Addr(), "err", err,
		"attempts", ex.tries, "pooled", reused, "moved", ex.moved, "retryable", ex.retry)
	l.fail(c, fasthttp.StatusBadGateway, msgBadGateway)
}

// dialFailed handles a connect to up that failed: as in forward, the
// backend is marked, and an idempotent request moves to another backend
// once.
func (l *hloop) dialFailed(c *hconn, up *upstream, err error) {
	ex := &c.ex
	if errors.Is(err, errTooManyBackendConns) {
		l.fail(c, fasthttp.StatusServiceUnavailable, msgBackendBusy)
		return
	}
	l.s.failed(up, ex.start)
	if ex.retry && ex.tries < 5 && !ex.moved && !ex.d.stuck() && l.s.repick(&ex.d, up.backend, ex.start.UnixNano()) {
		ex.moved = true
		l.dispatch(c, false)
		return
	}
	l.s.log.Debug("upstream connect failed", "route", ex.d.route.name, "backend", up.backend.Addr(), "err", err)
	switch {
	case ex.d.stuck():
		l.fail(c, fasthttp.StatusServiceUnavailable, msgStickyGone)
	case errors.Is(err, fasthttp.ErrDialTimeout):
		l.fail(c, fasthttp.StatusGatewayTimeout, msgTimeout)
	default:
		l.fail(c, fasthttp.StatusBadGateway, msgBadGateway)
	}
}

// lastAnswerSent closes a client connection whose last answer is out. The
// client may still be sending (the rest of a body latch refused): closing
// with its bytes unread would reset the connection, which can destroy the
// answer before the client reads it. So the write side is shut, and what
// comes is read and dropped until the client closes, or for lingerFor.
func (l *hloop) lastAnswerSent(c *hconn) {
	if c.eof {
		l.closeClient(c)
		return
	}
	unix.Shutdown(c.fd, unix.SHUT_WR)
	c.linger, c.last = true, l.now
	l.discard(c)
}

// lingerFor bounds how long a closing client connection is read from.
const lingerFor = time.Second

// discard reads and drops what a lingering connection has, closing it at
// the client's end.
func (l *hloop) discard(c *hconn) {
	for {
		n, err := rawRead(c.fd, l.buf)
		switch {
		case n > 0, err == unix.EINTR:
		case err == unix.EAGAIN:
			return
		default:
			l.closeClient(c)
			return
		}
	}
}

// closeClient closes a client connection; its exchange must be over.
func (l *hloop) closeClient(c *hconn) {
	if c.slot < 0 {
		return
	}
	l.release(c)
	unix.Close(c.fd)
	l.ln.connGone(c)
	l.putKit(c)
}

// bpool is a loop's connections to one backend: the idle ones, and how
// many are open in all (against the loop's share of
// Options.MaxConnsPerBackend).
type bpool struct {
	idle    []*hconn
	open    int
	waiting []*hconn // clients whose requests wait for a connection (Limits.BackendQueueTimeout)
}

var errTooManyBackendConns = errors.New("the backend is at its connection limit")

// backendConn returns an idle pooled connection to up (unless fresh), or
// a new one (its connect perhaps still in progress).
func (l *hloop) backendConn(up *upstream, fresh bool) (*hconn, error) {
	p := l.pools[up]
	if p == nil {
		p = &bpool{}
		l.pools[up] = p
	}
	if n := len(p.idle); n > 0 && !fresh {
		b := p.idle[n-1]
		p.idle = p.idle[:n-1]
		b.reused = true
		return b, nil
	}
	if p.open >= l.maxConns || len(p.waiting) > 0 {
		return nil, errTooManyBackendConns // and the queue goes first
	}
	b, err := l.dial(up)
	if err != nil {
		if p.open == 0 && len(p.waiting) == 0 {
			delete(l.pools, up)
		}
		return nil, err
	}
	p.open++
	return b, nil
}

// dial connects to up without waiting: on loopback or the same node the
// connect has usually finished when it returns (the tunnel engine's dial
// says more); otherwise the connection waits on the loop for writability.
func (l *hloop) dial(up *upstream) (*hconn, error) {
	fd, inProgress, err := connectNonblocking(up.addr, backendKeepIdle)
	if err != nil {
		return nil, err
	}
	b := &hconn{fd: fd, back: true, up: up, connecting: inProgress}
	events := uint32(watchIn)
	if b.connecting {
		events = watchOut
		b.due = time.Now().Add(l.s.opts.DialTimeout).UnixNano()
	}
	if err := l.add(b, events); err != nil {
		unix.Close(fd)
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(up.addr), Err: os.NewSyscallError("epoll_ctl", err)}
	}
	return b, nil
}

// pool keeps b for the next request to its backend, or gives it to the
// oldest waiting one.
func (l *hloop) pool(b *hconn) {
	p := l.pools[b.up]
	b.last = l.now
	b.readable = false
	if c := nextWaiter(p); c != nil {
		b.reused = true
		l.carry(c, b)
		return
	}
	p.idle = append(p.idle, b)
}

// closeBackend closes a backend connection that carries no exchange.
func (l *hloop) closeBackend(b *hconn) {
	if b.slot < 0 {
		return
	}
	l.release(b)
	unix.Close(b.fd)
	if p := l.pools[b.up]; p != nil && !b.tunnel {
		for i, x := range p.idle {
			if x == b {
				p.idle = append(p.idle[:i], p.idle[i+1:]...)
				break
			}
		}
		p.open--
		if c := nextWaiter(p); c != nil {
			// A connection freed up for the oldest waiting request.
			if nb, err := l.dial(b.up); err == nil {
				p.open++
				l.carry(c, nb)
			} else {
				c.ex.d.upstream().backend.Release()
				l.dialFailed(c, b.up, err)
			}
		}
		if p.open <= 0 && len(p.waiting) == 0 {
			delete(l.pools, b.up)
		}
	}
	b.in, b.out = nil, nil
}

// joinTunnel answers an upgrade the backend accepted: the 101 goes to the
// client first, then both sockets become a tunnel on the loop's hosted
// tunnel loop (l.tun), which moves their bytes as the engine's loops do,
// with the bytes either side sent early, as Server.upgrade and runTunnel
// do for fasthttp's path. The sockets stay on the loop's epoll instance,
// under new tags.
func (l *hloop) joinTunnel(c, b *hconn) {
	ex, ctx, s := &c.ex, c.ctx, l.s
	h := &l.resp
	up := ex.d.upstream()
	succeeded(up)
	copyResponseHeader(&ctx.Response.Header, h)
	s.addCookie(ctx, &ex.d)
	stripResponseHopByHop(&ctx.Response.Header, true)
	ctx.Response.Header.SetBytesKV(hdrUpgrade, h.PeekBytes(hdrUpgrade))
	s.access.record(ex.start, ex.d.route, up.backend, fasthttp.StatusSwitchingProtocols, ex.d.reason, ctx.Method(), ctx.Path(), c.info.peer, 0)
	s.metrics.observe(&ex.d, fasthttp.StatusSwitchingProtocols, ex.start)
	up.backend.Release()
	ex.active = false
	c.peer, b.peer = nil, nil
	if !s.tunnels.accepting() {
		l.closeBackend(b)
		l.s.reply(ctx, ex.start, &ex.d, fasthttp.StatusServiceUnavailable, msgNotReady)
		c.closing = true
		l.replyLocal(c)
		return
	}
	// The 101 and the backend's bytes past it go out now, in one write,
	// after what is left of an earlier answer the client has not taken
	// yet; only what the socket does not take is left for the tunnel to
	// send. The client's bytes past its request go to the backend there.
	out := ctx.Response.Header.AppendBytes(append(l.buf[:0], c.out...))
	out = append(out, b.in...)
	var toClient []byte
	if n, _ := rawWrite(c.fd, out); n < len(out) {
		toClient = append(toClient, out[max(n, 0):]...)
	}
	toBackend := append([]byte(nil), c.in...)
	t := &tunnel{b: up.backend, idle: s.opts.TunnelIdleTimeout, stats: s.metrics.cellOf(&ex.d)}
	cfd, bfd := c.fd, b.fd
	l.release(c)
	l.release(b)
	l.ln.connGone(c)
	l.putKit(c)
	b.in, b.out = nil, nil
	finish, ok := s.openTunnel(t)
	if !ok {
		unix.Close(cfd)
		unix.Close(bfd)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	et := newETunnel(cfd, bfd, toBackend, toClient, finish)
	if err := l.tun.adopt(et); err != nil {
		unix.Close(cfd)
		unix.Close(bfd)
		finish()
		return
	}
	t.et = et
	if t.closing {
		et.shutdown() // shutdown came between add and the join
	}
}
