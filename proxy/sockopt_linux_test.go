//go:build linux

package proxy

import (
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// An accepted connection must carry the keepalive and delayed ACKs set
// on the listening socket: latch sets nothing per connection and relies on
// the kernel copying the listener's options into every socket it accepts.
// The listener is plain TCP, not Go's default Multipath TCP.
func TestAcceptedConnectionsInheritTheListenersKeepalive(t *testing.T) {
	ln, err := listenTCP("127.0.0.1:0", 17*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	lrc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	lrc.Control(func(fd uintptr) {
		if p, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PROTOCOL); err != nil || p != unix.IPPROTO_TCP {
			t.Errorf("the listening socket's protocol is %d (%v), want TCP (%d)", p, err, unix.IPPROTO_TCP)
		}
	})
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
	rc.Control(func(fd uintptr) {
		checkSocketOptions(t, "accepted socket", int(fd), 17)
		// Reading TCP_QUICKACK says whether ACKs are sent at once: 0 is
		// delayed ACKs, inherited from the listener.
		if q, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK); err != nil || q != 0 {
			t.Errorf("accepted socket: TCP_QUICKACK = %d (%v), want 0 (delayed ACKs)", q, err)
		}
	})
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
