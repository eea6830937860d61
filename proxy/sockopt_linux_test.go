//go:build linux

package proxy

import (
	"context"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// An accepted connection must carry the keepalive set on the listening
// socket: latch sets nothing per connection and relies on the kernel
// copying the listener's options into every socket it accepts.
func TestAcceptedConnectionsInheritTheListenersKeepalive(t *testing.T) {
	lc := listenConfig(17 * time.Second)
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	acc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer acc.Close()
	rc, err := acc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) { checkSocketOptions(t, "accepted socket", int(fd), 17) })
}

// checkSocketOptions reports any of TCP_NODELAY and keepalive (after idle
// seconds, then every 15 s) that socket fd lacks.
func checkSocketOptions(t *testing.T, what string, fd, idle int) {
	t.Helper()
	for _, w := range []struct {
		name       string
		level, opt int
		val        int
	}{
		{"TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
		{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, idle},
		{"TCP_KEEPINTVL", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(keepAliveInterval / time.Second)},
	} {
		if got, err := unix.GetsockoptInt(fd, w.level, w.opt); err != nil || got != w.val {
			t.Errorf("%s: %s = %d (%v), want %d", what, w.name, got, err, w.val)
		}
	}
}
