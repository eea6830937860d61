//go:build linux

package proxy

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// rawConnect and rawAccept build and read socket addresses themselves, in
// network byte order; each must agree with what the kernel says of the
// same connection, for IPv4 and IPv6, on ports whose two bytes differ.
func TestRawConnectAndAcceptAgreeWithTheKernelOnAddresses(t *testing.T) {
	for _, tc := range []struct{ name, listen string }{
		{"an IPv4 listener", "127.0.0.1:0"},
		{"an IPv6 listener", "[::1]:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", tc.listen)
			if err != nil {
				t.Skipf("no %s here: %v", tc.name, err)
			}
			defer ln.Close()
			lfd, err := dupListener(ln.(*net.TCPListener))
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(lfd)
			target := ln.Addr().(*net.TCPAddr).AddrPort()
			family := unix.AF_INET6
			if target.Addr().Is4() {
				family = unix.AF_INET
			}
			cfd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(cfd)
			if err := rawConnect(cfd, target); err != nil && err != unix.EINPROGRESS {
				t.Fatalf("rawConnect to %v: %v", target, err)
			}
			var afd int
			var peer netip.AddrPort
			deadline := time.Now().Add(5 * time.Second)
			for {
				afd, peer, err = rawAccept(lfd)
				if err != unix.EAGAIN || time.Now().After(deadline) {
					break
				}
				time.Sleep(time.Millisecond)
			}
			if err != nil {
				t.Fatalf("rawAccept: %v", err)
			}
			defer unix.Close(afd)
			csa, err := unix.Getsockname(cfd)
			if err != nil {
				t.Fatal(err)
			}
			client, _ := sockaddrAddrPort(csa)
			if peer != client {
				t.Errorf("rawAccept says the peer is %v; the client's socket is %v", peer, client)
			}
			ssa, err := unix.Getsockname(afd)
			if err != nil {
				t.Fatal(err)
			}
			if server, _ := sockaddrAddrPort(ssa); server != target {
				t.Errorf("rawConnect reached %v, want %v", server, target)
			}
			if flags, err := unix.FcntlInt(uintptr(afd), unix.F_GETFL, 0); err != nil || flags&unix.O_NONBLOCK == 0 {
				t.Errorf("the accepted socket is not non-blocking (flags %#x, %v)", flags, err)
			}
		})
	}
}
