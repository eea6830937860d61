//go:build !linux

package proxy

import (
	"context"
	"net"
	"time"
)

// listenTCP opens an entrypoint's listening socket on addr.
func listenTCP(addr string, idle time.Duration) (net.Listener, error) {
	lc := listenConfig(idle)
	return lc.Listen(context.Background(), "tcp", addr)
}

// listenConfig is the ListenConfig of an entrypoint: TCP keepalive after
// idle, probing every 15 s, set by Go on every accepted connection.
func listenConfig(idle time.Duration) net.ListenConfig {
	return net.ListenConfig{KeepAliveConfig: keepAlive(idle)}
}
