//go:build linux

package proxy

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// maxFDTable bounds how far growFDTable grows the descriptor table: 64 Ki
// slots cost the kernel about 520 KB; a process allowed more grows on
// demand past it.
const maxFDTable = 1 << 16

// growFDTable sizes the process's descriptor table for the open-file
// limit (up to maxFDTable) at start, so that it never grows under load.
//
// The kernel doubles the table when a descriptor past its end is needed,
// and in a multi-threaded process (every Go program) each doubling waits
// for an RCU grace period, milliseconds long, on the thread that opened
// the descriptor: a proxy going from a few hundred to thousands of
// connections would stall a dozen times, in accept, socket or dup. One
// descriptor duplicated to the top of the table and closed again grows it
// once, for good: the kernel never shrinks it.
func growFDTable() (int, error) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	n := int(min(lim.Cur, maxFDTable))
	if n <= 1024 {
		return n, nil // the table starts that large anyway
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return 0, fmt.Errorf("eventfd: %w", err)
	}
	defer unix.Close(efd)
	// F_DUPFD takes the lowest free descriptor at or above n-1, so it
	// cannot land on one in use.
	top, err := unix.FcntlInt(uintptr(efd), unix.F_DUPFD_CLOEXEC, n-1)
	if err != nil {
		return 0, fmt.Errorf("fcntl: %w", err)
	}
	unix.Close(top)
	return n, nil
}
