//go:build !linux

package proxy

import (
	"errors"
	"net"
	"net/netip"
	"time"
)

// engine is Linux-only (epoll); elsewhere every tunnel is joined by
// goroutines.
type engine struct{}

type etunnel struct{}

func newEngine(int, time.Duration) (*engine, error) {
	return nil, errors.New("tunnel engine: epoll is Linux-only")
}

func (*engine) stop() {}

func (*engine) join(net.Conn, net.Conn, []byte, []byte, func()) (*etunnel, bool) {
	return nil, false
}

func (*etunnel) shutdown() {}

// bconn is the engine's dialed backend socket; without the engine there
// is none (dial always fails, and upgrades dial with Go's dialer).
type bconn struct{}

func (*engine) dial(netip.AddrPort, time.Duration, time.Duration) (*bconn, error) {
	return nil, errors.New("tunnel engine: epoll is Linux-only")
}

func (*engine) joinDialed(net.Conn, *bconn, []byte, []byte, func()) (*etunnel, bool) {
	return nil, false
}

func (*bconn) Read([]byte) (int, error)    { return 0, errors.ErrUnsupported }
func (*bconn) Write([]byte) (int, error)   { return 0, errors.ErrUnsupported }
func (*bconn) SetDeadline(time.Time) error { return errors.ErrUnsupported }
func (*bconn) Close() error                { return nil }
func (*bconn) netConn() (net.Conn, error)  { return nil, errors.ErrUnsupported }
