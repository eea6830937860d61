package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/latch-proxy/latch/balancer"
)

// maxUpgradeRefusal bounds the body of a non-101 answer to an upgrade,
// which latch reads whole before passing it back.
const maxUpgradeRefusal = 1 << 20

// upgrade forwards an Upgrade request (a WebSocket handshake) on a fresh
// backend connection. On 101 the client and backend connections are joined
// byte for byte; any other answer goes back as a normal response.
func (s *Server) upgrade(ctx *fasthttp.RequestCtx, d *decision, start time.Time) {
	req := &ctx.Request
	stripRequestHopByHop(&req.Header, true)
	s.setForwarded(ctx, d.tls)

	up := d.upstream()
	onEngine := s.engine != nil && !ctx.IsTLS()
	conn, err := s.dialUpgrade(up, onEngine)
	if err != nil {
		s.failed(up, start)
		if !s.repick(d, up.backend, start.UnixNano()) {
			s.reply(ctx, start, d, fasthttp.StatusBadGateway, msgBadGateway)
			return
		}
		up = d.upstream()
		if conn, err = s.dialUpgrade(up, onEngine); err != nil {
			s.failed(up, start)
			s.reply(ctx, start, d, fasthttp.StatusBadGateway, msgBadGateway)
			return
		}
	}

	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)
	br, err := s.handshake(conn, req, resp)
	if err != nil {
		conn.Close()
		s.log.Debug("upgrade handshake failed", "route", d.route.name, "backend", up.backend.Addr(), "err", err)
		s.reply(ctx, start, d, fasthttp.StatusBadGateway, msgBadGateway)
		return
	}
	copyResponseHeader(&ctx.Response.Header, &resp.Header)
	s.addCookie(ctx, d)
	status := resp.StatusCode()
	s.access.record(start, d.route, up.backend, status, d.reason, ctx.Method(), ctx.Path(), remoteAddr(ctx), int64(len(resp.Body())))
	if status != fasthttp.StatusSwitchingProtocols {
		conn.Close()
		s.bufs.putReader(br)
		stripResponseHopByHop(&ctx.Response.Header, false)
		ctx.Response.SetBodyRaw(append([]byte(nil), resp.Body()...))
		return
	}
	stripResponseHopByHop(&ctx.Response.Header, true)
	ctx.Response.Header.SetBytesKV(hdrUpgrade, resp.Header.PeekBytes(hdrUpgrade))

	if !s.tunnels.accepting() {
		conn.Close()
		s.bufs.putReader(br)
		s.reply(ctx, start, d, fasthttp.StatusServiceUnavailable, msgNotReady)
		return
	}
	t := &tunnel{br: br, b: up.backend, idle: s.opts.TunnelIdleTimeout, stats: s.metrics.cellOf(d)}
	t.adopt(conn)
	ctx.Hijack(func(c net.Conn) { s.runTunnel(t, c) })
}

// upgradeConn is the backend end of an upgrade until it is joined: a Go
// connection, or a socket the engine dialed (*bconn).
type upgradeConn interface {
	io.ReadWriteCloser
	SetDeadline(time.Time) error
}

// dialUpgrade connects to up for an upgrade. A tunnel the engine will run
// (onEngine: a plain-TCP client) gets its backend socket from the engine,
// straight onto the loop that will carry it; the rest get a Go connection.
func (s *Server) dialUpgrade(up *upstream, onEngine bool) (upgradeConn, error) {
	if onEngine && up.addr.IsValid() {
		return s.engine.dial(up.addr, s.opts.DialTimeout, backendKeepIdle)
	}
	return s.dialer.DialContext(context.Background(), "tcp", up.backend.Addr())
}

// handshake writes req to the backend and reads its answer into resp. The
// returned reader, from s.bufs, holds any bytes the backend sent after its
// header.
func (s *Server) handshake(conn upgradeConn, req *fasthttp.Request, resp *fasthttp.Response) (*bufio.Reader, error) {
	deadline := time.Now().Add(s.opts.DialTimeout + 30*time.Second)
	conn.SetDeadline(deadline)
	bw := s.bufs.writer(conn)
	err := req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	s.bufs.putWriter(bw)
	if err != nil {
		return nil, err
	}
	br := s.bufs.reader(conn)
	if err := resp.ReadLimitBody(br, maxUpgradeRefusal); err != nil {
		s.bufs.putReader(br)
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return br, nil
}

// tunnel is one joined client-backend connection pair, run either by the
// engine or by two goroutines (pipeJoin).
type tunnel struct {
	backend net.Conn // the backend connection, unless dialed holds it
	dialed  *bconn   // the backend socket, when the engine dialed it
	// dropDialed closes dialed if t is dropped unjoined (see adopt); it is
	// stopped once dialed is joined or closed, so that t does not keep the
	// bconn alive for as long as the tunnel is open.
	dropDialed runtime.Cleanup
	br         *bufio.Reader // backend bytes already read, from s.bufs
	b          *balancer.Backend
	idle       time.Duration
	stats      *cell // counts the tunnel while it is registered; may be nil

	mu      sync.Mutex
	closing bool     // close was called
	client  net.Conn // set when goroutines run the tunnel
	et      *etunnel // set when the engine runs it

	// last is the unix nano time of the last byte in either direction
	// (goroutine-run tunnels; the engine keeps its own).
	last atomic.Int64
}

// runTunnel runs t once the 101 has gone to the client on c, in fasthttp's
// hijack handler. It registers the tunnel, then hands both sockets to the
// engine when they are plain TCP and returns, letting fasthttp recycle its
// buffers and close its descriptor; otherwise it copies on this goroutine
// until the tunnel ends.
func (s *Server) runTunnel(t *tunnel, c net.Conn) {
	finish, ok := s.openTunnel(t)
	if !ok {
		c.Close()
		t.closeBackend()
		return
	}
	t.mu.Lock()
	if t.closing {
		t.mu.Unlock()
		c.Close()
		t.closeBackend()
		finish()
		return
	}
	raw := unwrapConn(c)
	if t.dialed != nil && isTCP(raw) {
		early := clientBuffered(c, raw)
		late := t.takeLate(&s.bufs)
		et, ok := s.engine.joinDialed(raw, t.dialed, early, late, finish)
		if !ok {
			t.mu.Unlock()
			raw.Close()
			t.closeBackend()
			finish()
			return
		}
		t.dropDialed.Stop()
		t.dialed, t.et = nil, et
		t.mu.Unlock()
		return
	}
	if t.dialed != nil {
		// Not a TCP client after all: goroutines run the tunnel, on a Go
		// connection made from the socket.
		conn, err := t.dialed.netConn()
		t.dropDialed.Stop()
		t.dialed = nil
		if err != nil {
			t.mu.Unlock()
			c.Close()
			finish()
			return
		}
		t.backend = conn
	}
	if s.engine != nil && isTCP(raw) && isTCP(t.backend) {
		early := clientBuffered(c, raw)
		late := t.takeLate(&s.bufs)
		et, ok := s.engine.join(raw, t.backend, early, late, finish)
		if !ok {
			t.mu.Unlock()
			raw.Close()
			t.backend.Close()
			finish()
			return
		}
		t.et = et
		t.mu.Unlock()
		return
	}
	t.client = c
	t.mu.Unlock()
	defer finish()
	t.pipeJoin(c)
}

// openTunnel registers t (shutdown closes it) and counts it on its
// backend; finish, for when it has closed, undoes both. It reports false
// once shutdown has closed the tunnels.
func (s *Server) openTunnel(t *tunnel) (finish func(), ok bool) {
	if !s.tunnels.add(t) {
		return nil, false
	}
	t.b.Acquire()
	return func() {
		s.tunnels.remove(t)
		t.b.Release()
	}, true
}

// adopt makes conn the tunnel's backend end. fasthttp skips the hijack
// handler when the 101 cannot be written (or the client asked to close),
// and then nothing joins or closes the backend: a Go connection is closed
// by its finalizer, and an engine socket, which has none, by a cleanup
// that runs once t is unreachable (a no-op when it was joined or closed).
func (t *tunnel) adopt(conn upgradeConn) {
	if bc, ok := conn.(*bconn); ok {
		t.dialed = bc
		t.dropDialed = runtime.AddCleanup(t, func(bc *bconn) { bc.Close() }, bc)
		return
	}
	t.backend = conn.(net.Conn)
}

// takeLate returns a copy of the bytes the backend sent past its 101 and
// gives the handshake reader back to bufs.
func (t *tunnel) takeLate(bufs *upgradeBufs) []byte {
	var late []byte
	if n := t.br.Buffered(); n > 0 {
		b, _ := t.br.Peek(n)
		late = append(late, b...)
	}
	bufs.putReader(t.br)
	t.br = nil
	return late
}

// closeBackend closes the backend end of a tunnel that was never joined.
func (t *tunnel) closeBackend() {
	if t.dialed != nil {
		t.dialed.Close()
		t.dropDialed.Stop()
		t.dialed = nil
		return
	}
	t.backend.Close()
}

// unwrapConn returns the connection under fasthttp's hijacked wrapper.
func unwrapConn(c net.Conn) net.Conn {
	if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		return u.UnsafeConn()
	}
	return c
}

func isTCP(c net.Conn) bool {
	_, ok := asTCP(c)
	return ok
}

// clientBuffered returns the bytes fasthttp read from the client past the
// upgrade request (a client may send its first frames without waiting for
// the 101). They sit in hijacked's reader; raw is the socket below it,
// which is told to refuse reads for the while (a swept connection, at the
// cost of a flag; another, with a deadline in the past), so that the
// reader gives up what it holds without waiting on the socket.
func clientBuffered(hijacked, raw net.Conn) []byte {
	if hijacked == raw {
		return nil
	}
	if sc, ok := raw.(*sweptConn); ok {
		sc.refuseReads.Store(true)
		defer sc.refuseReads.Store(false)
	} else {
		raw.SetReadDeadline(time.Unix(1, 0))
		defer raw.SetReadDeadline(time.Time{})
	}
	var out []byte
	var buf [512]byte
	for {
		n, err := hijacked.Read(buf[:])
		out = append(out, buf[:n]...)
		if err != nil || n == 0 {
			break
		}
	}
	if sc, ok := raw.(*sweptConn); ok && len(sc.pre) > 0 {
		// Bytes an event loop read past the upgrade request, which the
		// reader above has not reached.
		out, sc.pre = append(out, sc.pre...), nil
	}
	return out
}

// close ends the tunnel from outside its runner (shutdown): whoever runs
// it is woken and closes both connections. A tunnel not yet joined is
// closed by runTunnel when it sees closing.
func (t *tunnel) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closing = true
	switch {
	case t.et != nil:
		t.et.shutdown()
	case t.client != nil:
		t.backend.Close()
		t.client.SetReadDeadline(time.Now())
	}
}

// tunnels registers every open tunnel so shutdown can close them last.
type tunnels struct {
	mu     sync.Mutex
	m      map[*tunnel]struct{}
	closed bool
}

func newTunnels() *tunnels { return &tunnels{m: map[*tunnel]struct{}{}} }

// accepting reports whether a new tunnel may still open.
func (ts *tunnels) accepting() bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return !ts.closed
}

// add registers t; it reports false once closeAll has run.
func (ts *tunnels) add(t *tunnel) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed {
		return false
	}
	ts.m[t] = struct{}{}
	t.stats.openTunnel()
	return true
}

func (ts *tunnels) remove(t *tunnel) {
	ts.mu.Lock()
	delete(ts.m, t)
	ts.mu.Unlock()
	t.stats.closeTunnel()
}

func (ts *tunnels) count() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.m)
}

// closeAll closes every tunnel and refuses new ones. With a window, the
// closing is spread evenly over it, so that clients reconnect elsewhere
// gradually rather than all at once; it returns when all are closed.
func (ts *tunnels) closeAll(window time.Duration) {
	ts.mu.Lock()
	ts.closed = true
	all := make([]*tunnel, 0, len(ts.m))
	for t := range ts.m {
		all = append(all, t)
	}
	ts.mu.Unlock()
	var gap time.Duration
	if len(all) > 1 {
		gap = window / time.Duration(len(all))
	}
	for i, t := range all {
		if i > 0 && gap > 0 {
			time.Sleep(gap)
		}
		t.close()
	}
}
