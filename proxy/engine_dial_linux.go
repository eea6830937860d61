//go:build linux

package proxy

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// connectNonblocking starts a TCP connection to addr on a non-blocking
// socket with TCP_NODELAY and keepalive (after keepIdle), as Go's dialer
// would set them, and reports whether the connect is still in progress
// (it completes with the socket's first writability). Errors are
// *net.OpError with Op "dial", like net.Dialer's; the socket is then
// closed.
func connectNonblocking(addr netip.AddrPort, keepIdle time.Duration) (fd int, inProgress bool, err error) {
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	fail := func(call string, err error) (int, bool, error) {
		if fd >= 0 {
			unix.Close(fd)
		}
		return -1, false, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(addr), Err: os.NewSyscallError(call, err)}
	}
	family := unix.AF_INET6
	if addr.Addr().Is4() {
		family = unix.AF_INET
	}
	if fd, err = unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0); err != nil {
		fd = -1
		return fail("socket", err)
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		return fail("setsockopt", err)
	}
	if err := setKeepAlive(fd, keepIdle); err != nil {
		return fail("setsockopt", err)
	}
	// Delayed ACKs (HAProxy's tcp-smart-connect): the handshake's last
	// ACK goes with the request written next, one segment fewer. An
	// optimization only: its failure is no reason not to connect.
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_QUICKACK, 0)
	cerr := rawConnect(fd, addr)
	if cerr == unix.EINPROGRESS {
		// A near backend (loopback, the same node) has usually completed
		// the handshake by now: a second connect says so (EISCONN), or
		// reports its failure, and spares a round through the loop.
		switch cerr = rawConnect(fd, addr); cerr {
		case unix.EISCONN:
			cerr = nil
		case unix.EALREADY:
			cerr = unix.EINPROGRESS
		}
	}
	if cerr != nil && cerr != unix.EINPROGRESS {
		return fail("connect", cerr)
	}
	return fd, cerr != nil, nil
}

// bconn is a backend connection the engine dialed for a WebSocket
// upgrade. Its socket sits on one loop's epoll from the connect on, under
// a slot of its own, and Go's netpoller never sees it: the handshake runs
// on it through Read and Write, which wait on the loop's events, and a 101
// turns the slot into the tunnel's (joinDialed) with no duplicate
// descriptor and no re-registration. Compared with a net.Conn handed over
// by dup, an upgrade saves the netpoller's registration and removal, the
// address lookups after connect, the dup and a close.
//
// A bconn is used by one goroutine at a time, until joinDialed or Close.
type bconn struct {
	l        *eloop
	et       *etunnel // et.fd[sideBackend] is the socket; et.wake is set
	fd       int
	addr     netip.AddrPort
	deadline time.Time
	more     bool        // the last read filled its buffer: the socket may hold more
	timer    *time.Timer // fires at deadline; nil until a deadline is set
	// gone is set once the socket was closed or handed to a tunnel;
	// Close is then a no-op.
	gone atomic.Bool
}

// dial connects to addr within timeout. The socket gets TCP_NODELAY and
// keepalive (after keepIdle), as Go's dialer would set them. Errors are
// *net.OpError with Op "dial", like net.Dialer's.
func (e *engine) dial(addr netip.AddrPort, timeout, keepIdle time.Duration) (*bconn, error) {
	fd, inProgress, err := connectNonblocking(addr, keepIdle)
	if err != nil {
		return nil, err
	}
	fail := func(call string, err error) (*bconn, error) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(addr), Err: os.NewSyscallError(call, err)}
	}
	l := e.loops[int(e.next.Add(1))%len(e.loops)]
	et := &etunnel{fd: [2]int{-1, fd}, wake: make(chan struct{}, 1)}
	l.mu.Lock()
	if l.stopping.Load() {
		l.mu.Unlock()
		unix.Close(fd)
		return fail("connect", errEngineStopped)
	}
	l.take(et)
	// A connect still in progress completes with the first writability, so
	// output is watched too; a connected socket is watched for output only
	// once a write cannot finish.
	events := uint32(watchIn)
	if inProgress {
		events = watchOut
	}
	if err := l.watch(et, sideBackend, unix.EPOLL_CTL_ADD, events); err != nil {
		l.slots[et.slot] = nil
		l.free = append(l.free, et.slot)
		l.mu.Unlock()
		unix.Close(fd)
		return fail("epoll_ctl", err)
	}
	l.mu.Unlock()
	c := &bconn{l: l, et: et, fd: fd, addr: addr}
	if !inProgress {
		return c, nil
	}
	c.SetDeadline(time.Now().Add(timeout))
	for {
		if err := c.wait(); err != nil {
			c.Close()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(addr), Err: err}
			}
			return fail("connect", err)
		}
		// The loop reports a connecting socket once it is connected
		// (writable) or failed; SO_ERROR tells which.
		soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			c.Close()
			return fail("getsockopt", err)
		}
		switch e := unix.Errno(soerr); e {
		case 0, unix.EISCONN:
			c.SetDeadline(time.Time{})
			return c, nil
		case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
			continue
		default:
			c.Close()
			return fail("connect", e)
		}
	}
}

// wait blocks until the loop reports an event on the socket, the deadline
// passes (os.ErrDeadlineExceeded) or the engine stops.
func (c *bconn) wait() error {
	if c.l.stopping.Load() {
		return errEngineStopped
	}
	var expired <-chan time.Time
	if c.timer != nil && !c.deadline.IsZero() {
		if !time.Now().Before(c.deadline) {
			return os.ErrDeadlineExceeded
		}
		expired = c.timer.C
	}
	select {
	case <-c.et.wake:
	case <-expired:
		return os.ErrDeadlineExceeded
	}
	if c.l.stopping.Load() {
		return errEngineStopped
	}
	return nil
}

// SetDeadline bounds every later wait of Read and Write; zero removes the
// bound.
func (c *bconn) SetDeadline(t time.Time) error {
	c.deadline = t
	switch {
	case t.IsZero():
		if c.timer != nil {
			c.timer.Stop()
		}
	case c.timer == nil:
		c.timer = time.NewTimer(time.Until(t))
	default:
		c.timer.Reset(time.Until(t))
	}
	return nil
}

// Read reads the socket only when it may hold bytes: the last read filled
// p (more may wait), or the loop saw an edge since the last read. A read
// after a request has been sent therefore waits for the answer's edge
// first rather than beginning with a read that finds nothing.
func (c *bconn) Read(p []byte) (int, error) {
	for {
		if !c.more && !c.et.inEdge.Swap(false) {
			if err := c.wait(); err != nil {
				return 0, err
			}
			continue
		}
		n, err := rawRead(c.fd, p)
		switch {
		case err == nil && n == 0 && len(p) > 0:
			return 0, io.EOF
		case err == nil:
			c.more = n == len(p)
			return n, nil
		case err == unix.EINTR:
		case err != unix.EAGAIN:
			return 0, os.NewSyscallError("read", err)
		default:
			c.more = false
		}
	}
}

func (c *bconn) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := rawWrite(c.fd, p[done:])
		switch {
		case err == nil:
			done += n
		case err == unix.EINTR:
		case err != unix.EAGAIN:
			return done, os.NewSyscallError("write", err)
		default:
			if err := c.watchOutput(); err != nil {
				return done, err
			}
			if err := c.wait(); err != nil {
				return done, err
			}
		}
	}
	return done, nil
}

// watchOutput makes the loop report when the socket can take more bytes,
// if it does not already.
func (c *bconn) watchOutput() error {
	l := c.l
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.waitWritable(c.et, sideBackend)
}

// Close gives the socket up: it leaves the loop and is closed. After a
// successful joinDialed, which hands the socket over, or a first Close, it
// does nothing.
func (c *bconn) Close() error {
	if !c.gone.CompareAndSwap(false, true) {
		return nil
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	l := c.l
	l.mu.Lock()
	l.slots[c.et.slot] = nil
	l.free = append(l.free, c.et.slot)
	l.mu.Unlock()
	return unix.Close(c.fd) // its only descriptor: this takes it out of epoll
}

// netConn turns c into a Go connection, for a tunnel the engine cannot
// run; c is closed.
func (c *bconn) netConn() (net.Conn, error) {
	fd, err := unix.FcntlInt(uintptr(c.fd), unix.F_DUPFD_CLOEXEC, 0)
	c.Close()
	if err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	f := os.NewFile(uintptr(fd), "backend")
	defer f.Close()
	return net.FileConn(f)
}

// joinDialed joins the client connection with a backend socket the engine
// dialed, on the loop that already watches it. toBackend and toClient and
// done are as for join. On success c belongs to the tunnel and client is
// closed (the loop has a duplicate); on failure neither is touched.
func (e *engine) joinDialed(client net.Conn, c *bconn, toBackend, toClient []byte, done func()) (*etunnel, bool) {
	cfd, err := dupTCP(client)
	if err != nil {
		return nil, false
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	l, et := c.l, c.et
	l.mu.Lock()
	if l.stopping.Load() || c.gone.Load() {
		l.mu.Unlock()
		unix.Close(cfd)
		return nil, false
	}
	et.fd[sideClient] = cfd
	if err := l.watch(et, sideClient, unix.EPOLL_CTL_ADD, watchIn); err != nil {
		et.fd[sideClient] = -1
		l.mu.Unlock()
		unix.Close(cfd)
		return nil, false
	}
	c.gone.Store(true)
	et.pend = [2][]byte{toBackend, toClient}
	et.done = done
	et.last = time.Now().UnixNano()
	et.wake = nil
	// The backend may hold bytes the handshake did not read: a last read
	// that filled its buffer, or an edge since (bytes, or an end, which
	// handle noted in ended).
	et.readable[sideBackend] = c.more || et.inEdge.Load() || et.ended[sideBackend]
	l.start(et)
	l.mu.Unlock()
	client.Close()
	return et, true
}
