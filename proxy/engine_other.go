//go:build !linux

package proxy

import (
	"errors"
	"net"
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
