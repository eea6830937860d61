package proxy

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// sweep keeps the read deadlines of latch's TCP connections, clients' and
// backends', that lie well ahead, in place of the runtime's timers.
// fasthttp sets two per keep-alive request (the idle timeout, then the
// read timeout) and the transport one per backend exchange; each would
// reset a runtime timer under the timer heap's lock and read the clock
// twice more. Here it is a store under the connection's own mutex. Every
// tick, the sweep puts each deadline that has come on its socket, which
// fails a blocked Read with a timeout just as the deadline would have: a
// timeout fires at most one tick (a tenth of the shortest timeout) late.
// A deadline less than a tick or two ahead (or past, to wake a reader
// now) goes on the socket at once.
type sweep struct {
	tick    time.Duration
	running atomic.Bool
	now     atomic.Int64 // the last tick's clock, Unix ns

	mu    sync.Mutex
	conns []*sweptConn
}

// maxSweepTick is the tick when every timeout is long (10 s or more); a
// shorter timeout gets a tick of a tenth of it (see newSweep). A sweep
// visits every open connection, so a long tick keeps an idle crowd of
// keep-alive clients cheap.
const maxSweepTick = time.Second

// newSweep returns a sweep precise to a tenth of the shortest of timeouts
// (zeros ignored), and to maxSweepTick at worst.
func newSweep(timeouts ...time.Duration) *sweep {
	tick := maxSweepTick
	for _, t := range timeouts {
		if t > 0 {
			tick = min(tick, max(t/10, time.Millisecond))
		}
	}
	return &sweep{tick: tick}
}

// start makes wrap take connections. run must follow.
func (w *sweep) start() {
	w.now.Store(time.Now().UnixNano())
	w.running.Store(true)
}

// run enforces deadlines until ctx ends; then wrap takes no more
// connections.
func (w *sweep) run(ctx context.Context) {
	defer w.running.Store(false)
	t := time.NewTicker(w.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			w.enforce(now.UnixNano())
		}
	}
}

func (w *sweep) enforce(now int64) {
	w.now.Store(now)
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.conns {
		c.enforce(now)
	}
}

// wrap returns c with its read deadlines kept by the sweep, when c is a
// TCP connection and the sweep runs; else c itself.
func (w *sweep) wrap(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok || !w.running.Load() {
		return c
	}
	sc := &sweptConn{TCPConn: tc, w: w}
	sc.raw.init(tc)
	if a, ok := tc.RemoteAddr().(*net.TCPAddr); ok {
		sc.peer = a.AddrPort().Addr().Unmap()
	}
	w.mu.Lock()
	sc.i = len(w.conns)
	w.conns = append(w.conns, sc)
	w.mu.Unlock()
	return sc
}

func (w *sweep) remove(c *sweptConn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c.i < 0 {
		return
	}
	last := len(w.conns) - 1
	w.conns[c.i] = w.conns[last]
	w.conns[c.i].i = c.i
	w.conns[last] = nil
	w.conns = w.conns[:last]
	c.i = -1
}

// listener returns ln with its accepted connections wrapped.
func (w *sweep) listener(ln net.Listener) net.Listener { return sweptListener{ln, w} }

type sweptListener struct {
	net.Listener
	w *sweep
}

func (l sweptListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.w.wrap(c), nil
}

// sweptConn is a TCP connection whose far read deadlines the sweep keeps,
// and whose reads and writes are raw system calls (rawIO). Everything
// else is the TCPConn's own.
type sweptConn struct {
	*net.TCPConn
	w *sweep

	mu sync.Mutex
	// due is the read deadline the sweep keeps, Unix ns; 0: none.
	due int64
	// onSocket: a read deadline was put on the socket (by enforce, or
	// because it was near); a later deadline must take it off.
	onSocket bool
	i        int // index in w.conns, under w.mu; -1 once closed

	peer netip.Addr // the far end's IP, noted once for every request's use
	raw  rawIO      // Read and Write
	// refuseReads makes Read fail at once with errReadsRefused, leaving
	// the socket's bytes where they are (see clientBuffered).
	refuseReads atomic.Bool
	// pre holds bytes read from the socket before the connection was
	// handed to its reader (an event loop's, see lane); Read returns them
	// first.
	pre []byte
}

var errReadsRefused = errors.New("reads refused while the connection is handed over")

func (c *sweptConn) Read(p []byte) (int, error) {
	if c.refuseReads.Load() {
		return 0, errReadsRefused
	}
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		if c.pre = c.pre[n:]; len(c.pre) == 0 {
			c.pre = nil
		}
		return n, nil
	}
	return c.raw.read(c.TCPConn, p)
}

func (c *sweptConn) Write(p []byte) (int, error) { return c.raw.write(c.TCPConn, p) }

func (c *sweptConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !t.IsZero() {
		due := t.UnixNano()
		// The sweep's clock lags by up to a tick: due is at least a tick
		// ahead of the real time when it is two ahead of the sweep's.
		if due < c.w.now.Load()+2*int64(c.w.tick) {
			c.due, c.onSocket = 0, true
			return c.TCPConn.SetReadDeadline(t)
		}
		c.due = due
	} else {
		c.due = 0
	}
	if c.onSocket {
		c.onSocket = false
		return c.TCPConn.SetReadDeadline(time.Time{})
	}
	return nil
}

func (c *sweptConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.TCPConn.SetWriteDeadline(t)
}

// enforce puts the kept deadline on the socket once it has come.
func (c *sweptConn) enforce(now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.due != 0 && c.due <= now {
		c.TCPConn.SetReadDeadline(time.Unix(0, c.due))
		c.due, c.onSocket = 0, true
	}
}

func (c *sweptConn) Close() error {
	c.w.remove(c)
	return c.TCPConn.Close()
}

// asTCP returns the TCP connection c is or wraps.
func asTCP(c net.Conn) (*net.TCPConn, bool) {
	switch c := c.(type) {
	case *net.TCPConn:
		return c, true
	case *sweptConn:
		return c.TCPConn, true
	}
	return nil, false
}
