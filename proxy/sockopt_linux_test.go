//go:build linux

package proxy

import (
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A socket the event loops accept must carry TCP_NODELAY, keepalive and
// delayed ACKs, all set on the listening socket: latch sets nothing per
// connection and relies on the kernel copying the listener's options into
// every socket it accepts. The socket is accepted as the loops do (with
// accept4, not Go's Accept, which would set TCP_NODELAY itself). The
// listener is plain TCP, not Go's default Multipath TCP.
func TestAnAcceptedSocketInheritsTheListenersOptions(t *testing.T) {
	ln, err := listenTCP("127.0.0.1:0", 17*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lrc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var lfd int
	lrc.Control(func(fd uintptr) {
		lfd = int(fd)
		if p, err := unix.GetsockoptInt(lfd, unix.SOL_SOCKET, unix.SO_PROTOCOL); err != nil || p != unix.IPPROTO_TCP {
			t.Errorf("the listening socket's protocol is %d (%v), want TCP (%d)", p, err, unix.IPPROTO_TCP)
		}
	})
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x")) // the listener defers accept until the client speaks
	fd := -1
	for deadline := time.Now().Add(5 * time.Second); fd < 0 && time.Now().Before(deadline); {
		if fd, _, err = rawAccept(lfd); err == unix.EAGAIN {
			time.Sleep(5 * time.Millisecond)
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if fd < 0 {
		t.Fatal("nothing to accept")
	}
	defer unix.Close(fd)
	checkSocketOptions(t, "accepted socket", fd, 17)
	// Reading TCP_QUICKACK says whether ACKs are sent at once: 0 is
	// delayed ACKs, inherited from the listener.
	if q, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_QUICKACK); err != nil || q != 0 {
		t.Errorf("accepted socket: TCP_QUICKACK = %d (%v), want 0 (delayed ACKs)", q, err)
	}
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

// A new connection reaches accept with its first bytes, so that the event
// loop accepts and reads the request in one wake-up; one whose client
// stays silent is accepted all the same once deferAccept has passed.
func TestAConnectionIsAcceptedWhenItsClientSpeaks(t *testing.T) {
	ln, err := listenTCP("127.0.0.1:0", 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tl := ln.(*net.TCPListener)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tl.SetDeadline(time.Now().Add(300 * time.Millisecond))
	if acc, err := tl.Accept(); err == nil {
		acc.Close()
		t.Fatal("a connection whose client has sent nothing was accepted at once")
	}
	req := "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	tl.SetDeadline(time.Now().Add(5 * time.Second))
	acc, err := tl.Accept()
	if err != nil {
		t.Fatalf("the connection was not accepted once its client spoke: %v", err)
	}
	defer acc.Close()
	acc.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(req))
	if _, err := io.ReadFull(acc, got); err != nil || string(got) != req {
		t.Fatalf("read %q (%v), want the request %q", got, err, req)
	}

	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	tl.SetDeadline(time.Now().Add(deferAccept + 5*time.Second))
	late, err := tl.Accept()
	if err != nil {
		t.Fatalf("a silent connection was not accepted after the deferral: %v", err)
	}
	late.Close()
}
