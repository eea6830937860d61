//go:build linux

package proxy

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// listenConfig is the ListenConfig of an entrypoint: TCP keepalive after
// idle, probing every 15 s. On Linux it is set once, on the listening
// socket, and every accepted socket inherits it from the listener in the
// kernel; Go's own per-connection keepalive is off, which saves three
// setsockopt calls on every connection accepted.
func listenConfig(idle time.Duration) net.ListenConfig {
	return net.ListenConfig{
		KeepAlive: -1,
		Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = setKeepAlive(int(fd), idle)
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
