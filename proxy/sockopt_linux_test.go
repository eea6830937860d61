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
	want := []struct {
		name       string
		level, opt int
		val        int
	}{
		{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 17},
		{"TCP_KEEPINTVL", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 15},
		{"TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
	}
	rc.Control(func(fd uintptr) {
		for _, w := range want {
			got, err := unix.GetsockoptInt(int(fd), w.level, w.opt)
			if err != nil || got != w.val {
				t.Errorf("accepted socket: %s = %d (%v), want %d", w.name, got, err, w.val)
			}
		}
	})
}
