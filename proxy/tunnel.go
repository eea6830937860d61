package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
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
	conn, err := s.dialer.DialContext(context.Background(), "tcp", up.backend.Addr())
	if err != nil {
		s.failed(up, start)
		if !s.repick(d, up.backend, start.UnixNano()) {
			s.reply(ctx, start, d, fasthttp.StatusBadGateway, msgBadGateway)
			return
		}
		up = d.upstream()
		if conn, err = s.dialer.DialContext(context.Background(), "tcp", up.backend.Addr()); err != nil {
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
	resp.Header.CopyTo(&ctx.Response.Header)
	s.addCookie(ctx, d)
	status := resp.StatusCode()
	s.access.record(start, d.route, up.backend, status, d.reason, ctx.Method(), ctx.Path(), remoteAddr(ctx), int64(len(resp.Body())))
	if status != fasthttp.StatusSwitchingProtocols {
		conn.Close()
		stripResponseHopByHop(&ctx.Response.Header, false)
		ctx.Response.SetBodyRaw(append([]byte(nil), resp.Body()...))
		return
	}
	stripResponseHopByHop(&ctx.Response.Header, true)
	ctx.Response.Header.SetBytesKV(hdrUpgrade, resp.Header.PeekBytes(hdrUpgrade))

	t := &tunnel{backend: conn, br: br, b: up.backend, idle: s.opts.TunnelIdleTimeout, stats: s.metrics.cellOf(d)}
	if !s.tunnels.add(t) {
		conn.Close()
		s.reply(ctx, start, d, fasthttp.StatusServiceUnavailable, msgNotReady)
		return
	}
	up.backend.Acquire()
	ctx.Hijack(func(c net.Conn) {
		defer s.tunnels.remove(t)
		defer up.backend.Release()
		t.join(c)
	})
}

// handshake writes req to the backend and reads its answer into resp. The
// returned reader holds any bytes the backend sent after its header.
func (s *Server) handshake(conn net.Conn, req *fasthttp.Request, resp *fasthttp.Response) (*bufio.Reader, error) {
	deadline := time.Now().Add(s.opts.DialTimeout + 30*time.Second)
	conn.SetDeadline(deadline)
	bw := bufio.NewWriter(conn)
	if err := req.Write(bw); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(conn, 16<<10)
	if err := resp.ReadLimitBody(br, maxUpgradeRefusal); err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return br, nil
}

// tunnel is one joined client-backend connection pair.
type tunnel struct {
	client  atomic.Pointer[net.Conn] // set by join, read by closeAll
	backend net.Conn
	br      *bufio.Reader // backend bytes already read
	b       *balancer.Backend
	idle    time.Duration
	stats   *cell // counts the tunnel while it is registered; may be nil
	// last is the unix nano time of the last byte in either direction.
	last atomic.Int64
}

// join copies bytes both ways until both directions end or the tunnel
// idles out. A half-close on one side is passed on as a half-close to the
// other. It returns when both connections are done.
func (t *tunnel) join(client net.Conn) {
	t.client.Store(&client)
	t.last.Store(time.Now().UnixNano())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.pipe(t.backend, client)
		closeWrite(t.backend)
	}()
	t.pipe(client, t.br)
	closeWrite(client)
	<-done
	t.backend.Close()
	client.Close()
}

// pipe copies src to dst. Reads wait at most the idle timeout measured
// from the last byte in either direction, so a one-way stream keeps both
// directions alive.
//
// An idle tunnel parks one pipe per direction in Read, so what a pipe holds
// while it waits is paid per open tunnel. Each reads into a small buffer and
// takes a large one only while reads fill the small one (a bulk transfer),
// dropping it again at the first short read. On the backend side the 16 KB
// handshake reader is let go as soon as the bytes it read ahead are out.
func (t *tunnel) pipe(dst net.Conn, src io.Reader) {
	const (
		smallBuf = 512
		largeBuf = 16 << 10
	)
	small := make([]byte, smallBuf)
	buf := small
	rc, _ := src.(interface{ SetReadDeadline(time.Time) error })
	if rc == nil {
		// The backend side reads through its bufio.Reader; deadlines go on
		// the connection below it.
		rc = t.backend
	}
	for {
		if br, ok := src.(*bufio.Reader); ok && br.Buffered() == 0 {
			src, t.br = t.backend, nil
		}
		rc.SetReadDeadline(time.Unix(0, t.last.Load()).Add(t.idle))
		n, err := src.Read(buf)
		if n > 0 {
			t.last.Store(time.Now().UnixNano())
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		switch {
		case n == len(buf) && len(buf) == smallBuf:
			buf = make([]byte, largeBuf)
		case n < smallBuf && len(buf) != smallBuf:
			buf = small // the large buffer goes to the GC
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) &&
				time.Since(time.Unix(0, t.last.Load())) < t.idle {
				continue // the other direction is busy
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// Idle for the whole window: end both directions.
				t.backend.SetReadDeadline(time.Now())
				dst.SetReadDeadline(time.Now())
			}
			return
		}
	}
}

// closeWrite half-closes c when it can, else closes it.
func closeWrite(c net.Conn) {
	if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		c = u.UnsafeConn()
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}

// tunnels registers every open tunnel so shutdown can close them last.
type tunnels struct {
	mu     sync.Mutex
	m      map[*tunnel]struct{}
	closed bool
}

func newTunnels() *tunnels { return &tunnels{m: map[*tunnel]struct{}{}} }

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

// close ends both of t's copy loops: the backend connection is closed and
// the client reader woken.
func (t *tunnel) close() {
	t.backend.Close()
	if c := t.client.Load(); c != nil {
		(*c).SetReadDeadline(time.Now())
	}
}
