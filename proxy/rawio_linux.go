//go:build linux

package proxy

import (
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
