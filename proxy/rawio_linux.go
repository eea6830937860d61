//go:build linux

package proxy

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The engine's sockets and the connections latch serves and dials are
// non-blocking, and the engine's epoll waits never block: their reads,
// writes and waits are made as raw system calls. They skip the runtime's
// syscall entry and exit, which cost about 50 ns a call and, after the
// process was idle, wake the runtime's monitor thread (sysmon) to watch
// for a blocking call that cannot happen here. A raw call holds its P for
// the call's duration, which for these calls is bounded by the kernel's
// work on the bytes at hand. (rawIO waits in Go's netpoller; the engine in
// its own loops.) read and write, not recvfrom and sendto: measured in
// latch, the socket calls were no cheaper.

// rawRead is read(2) on a non-blocking descriptor.
func rawRead(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

// rawWrite is write(2) on a non-blocking descriptor.
func rawWrite(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

// epollWait collects the events ready on epfd without waiting
// (epoll_pwait with a zero timeout and no signal mask).
func epollWait(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

// rawAccept is accept4(2) on a non-blocking listening socket: the new
// socket, non-blocking and close-on-exec, and its peer's address, read
// without the allocations of unix.Accept4.
func rawAccept(fd int) (int, netip.AddrPort, error) {
	var rsa unix.RawSockaddrAny
	size := uint32(unix.SizeofSockaddrAny)
	nfd, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&size)),
		unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, netip.AddrPort{}, e
	}
	var peer netip.AddrPort
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&rsa))
		peer = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), netPort(sa.Port))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&rsa))
		peer = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), netPort(sa.Port))
	}
	return int(nfd), peer, nil
}

// rawConnect is connect(2) of a non-blocking socket to addr (an IPv4 one
// for an AF_INET socket), without the allocation of unix.Connect.
func rawConnect(fd int, addr netip.AddrPort) error {
	var e unix.Errno
	if ip := addr.Addr(); ip.Is4() {
		sa := unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ip.As4(), Port: netPort(addr.Port())}
		_, _, e = unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unix.SizeofSockaddrInet4)
	} else {
		sa := unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ip.As16(), Port: netPort(addr.Port())}
		_, _, e = unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unix.SizeofSockaddrInet6)
	}
	if e != 0 {
		return e
	}
	return nil
}

// netPort swaps a port between host order and the network order of a
// sockaddr's port field (the swap is its own inverse).
func netPort(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}
