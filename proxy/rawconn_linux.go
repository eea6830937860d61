//go:build linux

package proxy

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// rawIO reads and writes a TCP connection's non-blocking socket with raw
// system calls (see rawio_linux.go), waiting for readiness in Go's
// netpoller exactly as net.TCPConn does, deadlines included. What it saves
// per call is the runtime's syscall entry and exit and, on the first call
// after the process was idle, the wake-up of sysmon that the entry makes.
//
// One Read and one Write may run at once; further callers of either wait
// on its mutex. The zero rawIO (init not called, or the socket not
// reachable) leaves both to the TCPConn.
type rawIO struct {
	rc syscall.RawConn

	rmu    sync.Mutex
	rp     []byte
	rn     int
	rerr   error
	readFn func(fd uintptr) bool

	wmu     sync.Mutex
	wp      []byte
	wn      int
	werr    error
	writeFn func(fd uintptr) bool
}

func (r *rawIO) init(tc *net.TCPConn) {
	rc, err := tc.SyscallConn()
	if err != nil {
		return
	}
	r.rc, r.readFn, r.writeFn = rc, r.readOnce, r.writeSome
}

// read is net.Conn's Read on tc's socket.
func (r *rawIO) read(tc *net.TCPConn, p []byte) (int, error) {
	if r.rc == nil {
		return tc.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	r.rmu.Lock()
	r.rp, r.rn, r.rerr = p, 0, nil
	err := r.rc.Read(r.readFn)
	n, rerr := r.rn, r.rerr
	r.rp, r.rerr = nil, nil
	r.rmu.Unlock()
	switch {
	case err != nil:
		err = renamed(err, "read") // the poller's: closed, or a deadline
	case rerr != nil && rerr != io.EOF:
		err = &net.OpError{Op: "read", Net: "tcp", Source: tc.LocalAddr(), Addr: tc.RemoteAddr(), Err: rerr}
	default:
		err = rerr
	}
	return n, err
}

// renamed gives an error of the RawConn ("raw-read tcp ...: i/o timeout")
// the operation a net.Conn would name; it is fresh per call, so it is
// changed in place.
func renamed(err error, op string) error {
	if oe, ok := err.(*net.OpError); ok {
		oe.Op = op
	}
	return err
}

// readOnce makes one read that finds bytes, an end or an error; it asks
// the netpoller to wait while the socket has nothing.
func (r *rawIO) readOnce(fd uintptr) bool {
	for {
		n, err := rawRead(int(fd), r.rp)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return false
		case err != nil:
			r.rerr = os.NewSyscallError("read", err)
		case n == 0:
			r.rerr = io.EOF
		default:
			r.rn = n
		}
		return true
	}
}

// write is net.Conn's Write on tc's socket: all of p, or an error.
func (r *rawIO) write(tc *net.TCPConn, p []byte) (int, error) {
	if r.rc == nil {
		return tc.Write(p)
	}
	r.wmu.Lock()
	r.wp, r.wn, r.werr = p, 0, nil
	err := r.rc.Write(r.writeFn)
	n, werr := r.wn, r.werr
	r.wp, r.werr = nil, nil
	r.wmu.Unlock()
	switch {
	case err != nil:
		err = renamed(err, "write")
	case werr != nil:
		err = &net.OpError{Op: "write", Net: "tcp", Source: tc.LocalAddr(), Addr: tc.RemoteAddr(), Err: werr}
	}
	return n, err
}

// writeSome writes what the socket takes of the rest of wp; it asks the
// netpoller to wait while the socket is full.
func (r *rawIO) writeSome(fd uintptr) bool {
	for r.wn < len(r.wp) {
		n, err := rawWrite(int(fd), r.wp[r.wn:])
		switch {
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			return false
		case err != nil:
			r.werr = os.NewSyscallError("write", err)
			return true
		default:
			r.wn += n
		}
	}
	return true
}
