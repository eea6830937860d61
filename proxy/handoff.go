package proxy

import (
	"net"
	"sync"
)

// handoffListener is the net.Listener through which the event loops give
// fasthttp the client connections they do not serve themselves (see
// lane): fasthttp's Serve takes them from Accept, so its worker pool,
// connection tracking and graceful shutdown cover them as they cover the
// connections it accepts. Close makes Accept fail; a connection handed
// over after Close is closed.
type handoffListener struct {
	addr  net.Addr
	conns chan net.Conn

	mu     sync.Mutex
	closed bool
	done   chan struct{}
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, conns: make(chan net.Conn, 64), done: make(chan struct{})}
}

// give hands c to fasthttp, waiting while the queue is full.
func (l *handoffListener) give(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.done)
	}
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }
