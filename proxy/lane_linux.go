//go:build linux

package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

// lane serves the plain-HTTP entrypoints on event loops, one per
// GOMAXPROCS, as the tunnel engine moves WebSocket bytes: a loop accepts
// connections, reads requests, sends them on kept-alive backend
// connections and passes the answers back, from one goroutine with raw
// system calls and no goroutine per connection. Against fasthttp's
// goroutine per connection, this takes away the netpoller's empty reads
// and the scheduler's hand-offs of every request (bench/README.md).
//
// A loop serves the common request itself: HTTP/1.1 with a body of
// declared length or none, no Expect, no upgrade. Any other request goes
// to fasthttp with its connection, before any of its bytes reached a
// backend (handoffListener), together with the bytes the loop had read,
// and the connection stays there: WebSocket upgrades (which fasthttp then
// moves to the tunnel engine), chunked uploads, HTTP/1.0, and requests
// fasthttp cannot parse, which it then refuses in its own words. Both
// paths share admit, outbound and inbound, so routing, stickiness,
// headers, the access log and the metrics are the same. Answers pass
// through as they come, chunk framing included (bodyFrame finds their
// end).
type lane struct {
	s     *Server
	loops []*hloop
	wg    sync.WaitGroup
	eps   []*laneEntry
	// conns counts the client connections on the loops, which shutdown
	// waits for; draining is set by shutdown, and abandoned when it
	// waited long enough.
	conns     atomic.Int64
	handoffs  atomic.Int64 // connections given to fasthttp so far
	draining  atomic.Bool
	abandoned atomic.Bool
	// drained counts the loops that no longer watch the listening
	// sockets (they acted on draining, or exited).
	drained     atomic.Int32
	stopOnce    sync.Once
	entriesOnce sync.Once
}

// laneEntry is one entrypoint the loops serve.
type laneEntry struct {
	name    string
	fd      int // the listening socket, a duplicate the lane owns
	handoff *handoffListener
	metric  uint16       // the entrypoint's index in metrics
	conns   atomic.Int64 // its client connections on the loops (Limits.MaxConns)
}

// connGone counts off a client connection that left the loops (closed,
// handed to fasthttp, or joined to a tunnel).
func (ln *lane) connGone(c *hconn) {
	ln.conns.Add(-1)
	c.entry.conns.Add(-1)
}

// newLane starts n loops serving ls, a listener per entrypoint name. The
// listening sockets are duplicated: the caller keeps and closes its
// listeners. Connections for fasthttp go to handoffs[name].
func newLane(s *Server, n int, ls map[string]*net.TCPListener, handoffs map[string]*handoffListener) (*lane, error) {
	ln := &lane{s: s}
	for name, l := range ls {
		fd, err := dupListener(l)
		if err != nil {
			ln.closeEntries()
			return nil, fmt.Errorf("entrypoint %s: %w", name, err)
		}
		ln.eps = append(ln.eps, &laneEntry{name: name, fd: fd, handoff: handoffs[name], metric: s.metrics.entry(name)})
	}
	n = max(n, 1)
	for range n {
		l, err := newHloop(ln, (s.opts.MaxConnsPerBackend+n-1)/n)
		if err != nil {
			for _, l := range ln.loops {
				l.closeLoop()
			}
			ln.closeEntries()
			return nil, err
		}
		ln.loops = append(ln.loops, l)
	}
	for _, l := range ln.loops {
		ln.wg.Go(l.run)
	}
	return ln, nil
}

// closeEntries closes the lane's listening sockets, once.
func (ln *lane) closeEntries() {
	ln.entriesOnce.Do(func() {
		for _, e := range ln.eps {
			unix.Close(e.fd)
		}
	})
}

// dupListener returns a close-on-exec duplicate of l's socket.
func dupListener(l *net.TCPListener) (int, error) {
	rc, err := l.SyscallConn()
	if err != nil {
		return -1, err
	}
	return dupFD(rc)
}

// shutdown stops accepting, closes idle connections, and lets requests
// in flight finish (their connections close after them) until ctx ends;
// then the connections left are closed. Once no loop watches them, the
// lane's listening sockets are closed, so that new connections are
// refused rather than left in the kernel's queue. The loops go on running
// the tunnels on them until stop.
func (ln *lane) shutdown(ctx context.Context) {
	ln.draining.Store(true)
	ln.wake()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if int(ln.drained.Load()) == len(ln.loops) {
			ln.closeEntries()
			if ln.conns.Load() == 0 {
				return
			}
		}
		select {
		case <-ctx.Done():
			ln.abandoned.Store(true)
			ln.wake()
			return
		case <-t.C:
		}
	}
}

// wake interrupts every loop's wait.
func (ln *lane) wake() {
	for _, l := range ln.loops {
		l.wake()
	}
}

// stop ends the loops, closing every connection on them. It is safe to
// call more than once, from any goroutine.
func (ln *lane) stop() {
	ln.stopOnce.Do(func() {
		for _, l := range ln.loops {
			l.stopping.Store(true)
			l.wake()
		}
		ln.wg.Wait()
		ln.closeEntries()
	})
}

// hloop is one HTTP event loop: an epoll instance watched by Go's
// netpoller (so the loop parks like a goroutine), an eventfd to wake it,
// and its connections, client and backend, by slot.
type hloop struct {
	ln       *lane
	s        *Server
	epfd     int
	ep       *os.File
	wakefd   int
	stopping atomic.Bool
	drained  bool // the loop has acted on ln.draining
	dropped  bool // and on ln.abandoned

	slots []*hconn
	free  []int32
	pools map[*upstream]*bpool
	// tun holds the tunnels of the upgrades the loop answered, on the
	// loop's own epoll instance (their events carry hostedTag): an
	// upgrade's sockets change tags rather than leave for the engine.
	tun *eloop

	buf  []byte        // every read lands here first
	src  bytes.Reader  // a message head, for br
	br   *bufio.Reader // fasthttp's parsers read heads from it
	resp fasthttp.ResponseHeader
	// kits are what closed client connections leave for new ones
	// (takeKit): a fresh request context costs dozens of allocations as
	// its headers grow on a first request, and so do fresh buffers.
	kits []clientKit
	tick time.Duration
	now  int64 // Unix ns, read once per batch of events (and sweep)
	// maxConns is the loop's share of Options.MaxConnsPerBackend.
	maxConns int
}

// Epoll data words: a connection's slot (0 or more), the wake-up eventfd
// (wakeTag), and entrypoint i's listening socket as entryTag - i.
const entryTag = wakeTag - 1

func newHloop(ln *lane, maxConns int) (*hloop, error) {
	ep, epfd, wakefd, err := newWakeableEpoll("http loop")
	if err != nil {
		return nil, err
	}
	l := &hloop{ln: ln, s: ln.s, ep: ep, epfd: epfd, wakefd: wakefd, pools: map[*upstream]*bpool{}, buf: make([]byte, 64<<10), maxConns: maxConns,
		tun: newHostedLoop(epfd, ln.s.opts.TunnelIdleTimeout)}
	l.br = bufio.NewReaderSize(&l.src, readBufferSize)
	for i, e := range ln.eps {
		// Every loop watches every listening socket; EPOLLEXCLUSIVE wakes
		// one of them per connection.
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLEXCLUSIVE, Fd: int32(entryTag - i)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, e.fd, &ev); err != nil {
			l.closeLoop()
			return nil, fmt.Errorf("http loop: epoll_ctl: %w", err)
		}
	}
	lim := ln.s.opts.Limits
	l.tick = min(newSweep(lim.ReadTimeout, lim.IdleTimeout, lim.UpstreamTimeout, lim.BackendQueueTimeout, ln.s.opts.DialTimeout).tick, l.tun.sweepEvery)
	return l, nil
}

// clientKit is a client connection's request context and buffers.
type clientKit struct {
	ctx          *fasthttp.RequestCtx
	in, out, req []byte
}

// A loop keeps at most maxKits kits, about as many as it accepts
// connections in one turn under a burst, and only buffers of at most
// maxKitBuffer bytes (a large body's buffer is let go).
const (
	maxKits      = 64
	maxKitBuffer = 16 << 10
)

// takeKit equips c, a client connection just accepted, with a request
// context and buffers.
func (l *hloop) takeKit(c *hconn) {
	var k clientKit
	if n := len(l.kits); n > 0 {
		k, l.kits[n-1] = l.kits[n-1], clientKit{}
		l.kits = l.kits[:n-1]
	} else {
		k.ctx = &fasthttp.RequestCtx{}
	}
	k.ctx.Init2(&c.info, fasthttpLogger{l.s.log}, false)
	c.ctx, c.in, c.out, c.ex.req = k.ctx, k.in, k.out, k.req
}

// putKit takes back the request context and buffers of c, a client
// connection that has left the loop; c must not use them after.
func (l *hloop) putKit(c *hconn) {
	k := clientKit{ctx: c.ctx, in: reuse(c.in), out: reuse(c.out), req: reuse(c.ex.req)}
	c.ctx, c.in, c.out, c.ex.req = nil, nil, nil, nil
	if k.ctx == nil || len(l.kits) >= maxKits {
		return
	}
	// start resets them again before each request; resetting now too
	// gives their body buffers back to fasthttp's pools rather than
	// keeping them in an idle kit.
	k.ctx.Request.Reset()
	k.ctx.Response.Reset()
	l.kits = append(l.kits, k)
}

// reuse empties b for a kit, or drops it when it is too large to keep.
func reuse(b []byte) []byte {
	if cap(b) > maxKitBuffer {
		return nil
	}
	return b[:0]
}

func (l *hloop) closeLoop() {
	l.ep.Close()
	unix.Close(l.wakefd)
}

func (l *hloop) wake() {
	var one = [8]byte{1}
	unix.Write(l.wakefd, one[:])
}

// run handles events until the loop is stopped, then closes every
// connection and tunnel on it.
func (l *hloop) run() {
	defer l.closeLoop()
	err := pollEpoll(l.ep, l.tick, &l.stopping, l.batch, l.sweep)
	if err != nil {
		l.s.log.Error("http loop failed; its connections are closed", "err", err)
	}
	if !l.drained {
		l.drained = true
		l.ln.drained.Add(1) // its epoll instance, and what it watches, go with it
	}
	l.dropAll()
	l.tun.closeAll()
}

// dropAll closes every client and backend connection on the loop.
func (l *hloop) dropAll() {
	for _, c := range l.slots {
		if c != nil {
			l.drop(c)
		}
	}
}

// batch handles one epoll_wait's events. A panic while handling one (a
// bug) costs the connections involved, never the loop.
func (l *hloop) batch(events []unix.EpollEvent) {
	l.now = time.Now().UnixNano()
	l.followShutdown()
	for _, ev := range events {
		switch {
		case ev.Fd&hostedTag != 0 && ev.Fd >= 0:
			l.tun.mu.Lock()
			l.tun.handle(ev, l.now)
			l.tun.mu.Unlock()
		case ev.Fd == wakeTag:
			var b [8]byte
			unix.Read(l.wakefd, b[:])
		case ev.Fd <= entryTag:
			if i := int(entryTag - ev.Fd); i < len(l.ln.eps) && !l.drained {
				l.accept(l.ln.eps[i])
			}
		case int(ev.Fd) < len(l.slots):
			if c := l.slots[ev.Fd]; c != nil {
				l.event(c, ev.Events)
			}
		}
	}
}

// event acts on one connection's event, recovering from a panic.
func (l *hloop) event(c *hconn, ev uint32) {
	defer func() {
		if r := recover(); r != nil {
			l.s.log.Error("http loop panic; closing the connection", "panic", r, "stack", string(debug.Stack()))
			if c.slot >= 0 {
				l.drop(c)
			}
		}
	}()
	if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.hup = true
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		c.readable = true
	}
	writable := ev&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0
	if c.linger {
		l.discard(c)
		return
	}
	if c.back {
		l.backendEvent(c, writable)
	} else {
		l.clientEvent(c, writable)
	}
}

// accept takes the connections waiting on e's socket.
func (l *hloop) accept(e *laneEntry) {
	for range 64 {
		fd, peer, err := rawAccept(e.fd)
		if err != nil {
			if err != unix.EAGAIN && err != unix.EINTR && err != unix.ECONNABORTED {
				l.s.log.Warn("accept failed", "entrypoint", e.name, "err", err)
			}
			return
		}
		// TCP_NODELAY and keepalive, as Go's net package sets them on every
		// TCP connection, are inherited from the listening socket
		// (listenConfig).
		if e.conns.Load() >= int64(l.s.opts.Limits.MaxConns) {
			rawWrite(fd, msgTooManyConns)
			unix.Close(fd)
			continue
		}
		c := &hconn{fd: fd, entry: e, last: l.now}
		c.info = laneConnInfo{peer: peer.Addr().Unmap(), remote: peer, sock: c}
		if err := l.add(c, watchIn); err != nil {
			unix.Close(fd)
			continue
		}
		l.takeKit(c)
		l.ln.conns.Add(1)
		e.conns.Add(1)
		c.readable = true // the request is here already, as a rule (deferred accept)
		l.clientEvent(c, false)
	}
}

// msgTooManyConns answers a connection past Limits.MaxConns, in
// fasthttp's words, as its server does.
var msgTooManyConns = []byte("HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 83\r\n\r\n" +
	"The connection cannot be served because Server.Concurrency limit exceeded\n\n\n\n\n\n\n\n\n\n")

// add gives c a slot and watches its socket.
func (l *hloop) add(c *hconn, events uint32) error {
	if n := len(l.free); n > 0 {
		c.slot, l.free = l.free[n-1], l.free[:n-1]
		l.slots[c.slot] = c
	} else {
		c.slot = int32(len(l.slots))
		l.slots = append(l.slots, c)
	}
	c.watchOut = events&unix.EPOLLOUT != 0
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, c.fd, &unix.EpollEvent{Events: events, Fd: c.slot}); err != nil {
		l.release(c)
		return err
	}
	return nil
}

// release frees c's slot; c's descriptor is the caller's.
func (l *hloop) release(c *hconn) {
	l.slots[c.slot] = nil
	l.free = append(l.free, c.slot)
	c.slot = -1
}

// drop closes c, and the other end of an exchange in flight on it.
func (l *hloop) drop(c *hconn) {
	if c.slot < 0 {
		return
	}
	if c.back {
		if cl := c.peer; cl != nil {
			l.abort(cl)
			return
		}
		l.closeBackend(c)
		return
	}
	l.abort(c)
}

// flush writes what c has pending. It reports false when the socket
// failed; with bytes left, c is watched for output.
func (l *hloop) flush(c *hconn) bool {
	for len(c.out) > 0 {
		n, err := rawWrite(c.fd, c.out)
		switch {
		case err == unix.EAGAIN:
			return l.watchOutput(c) == nil
		case err == unix.EINTR:
			continue
		case err != nil:
			return false
		}
		if n == len(c.out) {
			c.out = c.out[:0]
		} else {
			c.out = c.out[:copy(c.out, c.out[n:])]
		}
	}
	return true
}

// send writes p to c after what is pending, keeping what the socket does
// not take.
func (l *hloop) send(c *hconn, p []byte) bool {
	if len(c.out) == 0 {
		for len(p) > 0 {
			n, err := rawWrite(c.fd, p)
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				break
			}
			if err != nil {
				return false
			}
			p = p[n:]
		}
		if len(p) == 0 {
			return true
		}
	}
	c.out = append(c.out, p...)
	return l.flush(c)
}

func (l *hloop) watchOutput(c *hconn) error {
	if c.watchOut {
		return nil
	}
	c.watchOut = true
	return unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: watchOut, Fd: c.slot})
}

// fill reads what c's socket holds onto c.in, up to limit bytes in all. It
// reports false when the socket failed. A short read empties an
// edge-triggered socket, so c is not read again before its next event;
// c.eof is set when the peer has ended.
func (l *hloop) fill(c *hconn, limit int) bool {
	for c.readable && len(c.in) < limit {
		p := l.buf[:min(len(l.buf), limit-len(c.in))]
		n, err := rawRead(c.fd, p)
		switch {
		case n > 0:
			c.in = append(c.in, p[:n]...)
			if n < len(p) && !c.hup {
				c.readable = false
			}
		case n == 0:
			c.eof, c.readable = true, false
		case err == unix.EAGAIN:
			c.readable = false
		case err == unix.EINTR:
		default:
			c.readable = false
			return false
		}
	}
	return true
}

// followShutdown acts on the lane's shutdown steps the loop has not yet
// acted on: draining, then giving up the connections left.
func (l *hloop) followShutdown() {
	if l.ln.draining.Load() && !l.drained {
		l.drain()
	}
	if l.ln.abandoned.Load() && !l.dropped {
		l.dropped = true
		l.dropAll()
	}
}

// drain acts on shutdown: the listening sockets are no longer watched,
// and client connections with nothing in flight are closed.
func (l *hloop) drain() {
	l.drained = true
	for _, e := range l.ln.eps {
		unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, e.fd, nil)
	}
	l.ln.drained.Add(1)
	for _, c := range l.slots {
		if c != nil && !c.back && !c.ex.active && len(c.in) == 0 && len(c.out) == 0 {
			l.closeClient(c)
		}
	}
}

// sweep closes idle and slow connections and idle tunnels, and times out
// exchanges.
func (l *hloop) sweep(now time.Time) {
	l.followShutdown()
	ns := now.UnixNano()
	l.now = ns
	lim := l.s.opts.Limits
	for _, c := range l.slots {
		switch {
		case c == nil:
		case c.back:
			switch {
			case c.connecting && ns >= c.due:
				l.backendFailed(c, fasthttp.ErrDialTimeout)
			case c.peer == nil && ns-c.last >= int64(backendIdle):
				l.closeBackend(c)
			}
		case c.linger:
			if ns-c.last >= int64(lingerFor) {
				l.closeClient(c)
			}
		case c.ex.queued:
			if ns >= c.ex.queueDue {
				l.dequeue(c)
				c.ex.d.upstream().backend.Release()
				l.fail(c, fasthttp.StatusServiceUnavailable, msgBackendBusy)
			}
		case c.ex.active:
			if lim.UpstreamTimeout > 0 && ns-c.ex.start.UnixNano() >= int64(lim.UpstreamTimeout) {
				l.timeout(c)
			}
		case len(c.in) > 0:
			if ns-c.last >= int64(lim.ReadTimeout) {
				c.closing = true
				if l.send(c, msgRequestTimeout) {
					l.lastAnswerSent(c)
				} else {
					l.closeClient(c)
				}
			}
		case ns-c.last >= int64(lim.IdleTimeout):
			l.closeClient(c)
		}
	}
	l.tun.mu.Lock()
	l.tun.sweep(ns)
	l.tun.mu.Unlock()
}

// backendIdle is how long a pooled backend connection may wait unused,
// as HostClient's MaxIdleConnDuration.
const backendIdle = 60 * time.Second

// msgRequestTimeout answers a client that did not finish its request
// header within Limits.ReadTimeout, in parseError's words.
var msgRequestTimeout = []byte("HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 23\r\n\r\nlatch: request timeout\n")

// handOff gives c to fasthttp with the bytes read from it: its descriptor
// leaves the loop, and a net.Conn on a duplicate of it goes to the
// entrypoint's handoffListener.
func (l *hloop) handOff(c *hconn) {
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	l.release(c)
	l.ln.connGone(c)
	l.ln.handoffs.Add(1)
	f := os.NewFile(uintptr(c.fd), "")
	nc, err := net.FileConn(f) // a duplicate, in Go's netpoller
	f.Close()
	if err != nil {
		l.s.log.Warn("handing a connection to fasthttp failed", "err", err)
		return
	}
	sc := l.s.sweep.wrap(nc)
	if w, ok := sc.(*sweptConn); ok {
		w.pre = append([]byte(nil), c.in...)
	} else if len(c.in) > 0 {
		sc = &prefixConn{Conn: sc, pre: append([]byte(nil), c.in...)}
	}
	l.putKit(c)
	select {
	case c.entry.handoff.conns <- sc:
	default:
		go c.entry.handoff.give(sc) // fasthttp is behind: the loop does not wait
	}
}

// prefixConn returns pre before the connection's own bytes; it stands in
// for a sweptConn when the sweep is not running (tests).
type prefixConn struct {
	net.Conn
	pre []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
