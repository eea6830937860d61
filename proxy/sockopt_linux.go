//go:build linux

package proxy

import (
	"context"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// listenTCP opens an entrypoint's listening socket on addr.
//
// It is a plain TCP socket: Go's listeners are Multipath TCP by default,
// and although a client that does not speak MPTCP (browsers, every peer
// proxy's clients) gets a plain TCP connection from one, its handshake
// takes the kernel's MPTCP path first, at a cost in the softirq of every
// connection opened (and TCP options such as TCP_QUICKACK are refused on
// the listener).
//
// Accepted sockets inherit, from the listening socket in the kernel:
//   - TCP_NODELAY and TCP keepalive after idle, probing every 15 s
//     (listenConfig), so Go's per-connection keepalive is off and the
//     event loops set nothing on the sockets they accept: four setsockopt
//     calls saved on every connection;
//   - delayed ACKs from the start (TCP_QUICKACK off, as HAProxy's
//     tcp-smart-accept): the request a client sends on a new connection is
//     acknowledged by the answer rather than by a bare ACK first, one
//     segment fewer per connection. The kernel's delayed-ACK timer still
//     acknowledges a request whose answer is slow. It must be set after
//     listen, which clears it.
//
// The listening socket also defers accept (TCP_DEFER_ACCEPT, nginx's
// "deferred", HAProxy's "defer-accept"): a connection is handed to accept
// once its first bytes arrive, which for HTTP and TLS, where the client
// speaks first, is at once. The kernel builds the connection's socket on
// that first segment rather than on the handshake's bare ACK, and the
// event loop accepts and reads the request in one wake-up instead of
// accepting, finding nothing to read and waiting again. A client that
// connects and stays silent is accepted after deferAccept all the same,
// and only then counts against Limits.MaxConns and its read timeout.
func listenTCP(addr string, idle time.Duration) (net.Listener, error) {
	lc := listenConfig(idle)
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	// An optimization only: a kernel that refuses it still serves.
	if rc, err := ln.(*net.TCPListener).SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 0)
			unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, int(deferAccept/time.Second))
		})
	}
	return ln, nil
}

// deferAccept is how long the kernel holds a silent new connection from
// accept: it rounds it up to a number of SYN-ACK retransmissions, the
// first after a second.
const deferAccept = time.Second

// listenConfig is the ListenConfig of an entrypoint: TCP_NODELAY, and
// TCP keepalive after idle probing every 15 s, set once on the listening
// socket.
func listenConfig(idle time.Duration) net.ListenConfig {
	return net.ListenConfig{
		KeepAlive: -1,
		Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				if serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); serr == nil {
					serr = setKeepAlive(int(fd), idle)
				}
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
}

// setKeepAlive turns TCP keepalive on for fd: probes after idle, then
// every 15 s, with the kernel's probe count.
func setKeepAlive(fd int, idle time.Duration) error {
	opts := [...]struct{ level, opt, val int }{
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(idle / time.Second)},
		{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(keepAliveInterval / time.Second)},
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.val); err != nil {
			return err
		}
	}
	return nil
}
