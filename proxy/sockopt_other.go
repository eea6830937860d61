//go:build !linux

package proxy

import (
	"net"
	"time"
)

// listenConfig is the ListenConfig of an entrypoint: TCP keepalive after
// idle, probing every 15 s, set by Go on every accepted connection.
func listenConfig(idle time.Duration) net.ListenConfig {
	return net.ListenConfig{KeepAliveConfig: keepAlive(idle)}
}
