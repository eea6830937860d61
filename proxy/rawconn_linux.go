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
	rc     syscall.RawConn
	rd, wr rawOp
}

// rawOp is one direction's state while a call runs: the caller's buffer,
// what the netpoller's callback did with it, and that callback.
type rawOp struct {
	mu  sync.Mutex
	p   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

func (r *rawIO) init(tc *net.TCPConn) {
	rc, err := tc.SyscallConn()
	if err != nil {
		return
	}
	r.rc, r.rd.fn, r.wr.fn = rc, r.rd.readOnce, r.wr.writeAll
}

// read is net.Conn's Read on tc's socket.
func (r *rawIO) read(tc *net.TCPConn, p []byte) (int, error) {
	if r.rc == nil {
		return tc.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, pollErr, ioErr := r.rd.run(r.rc.Read, p)
	return n, opError(tc, "read", pollErr, ioErr)
}

// write is net.Conn's Write on tc's socket: all of p, or an error.
func (r *rawIO) write(tc *net.TCPConn, p []byte) (int, error) {
	if r.rc == nil {
		return tc.Write(p)
	}
	n, pollErr, ioErr := r.wr.run(r.rc.Write, p)
	return n, opError(tc, "write", pollErr, ioErr)
}

// run hands o's callback to wait (the RawConn's Read or Write) for p. It
// returns the bytes done, the netpoller's error (closed, or a deadline)
// and the system call's.
func (o *rawOp) run(wait func(func(fd uintptr) bool) error, p []byte) (n int, pollErr, ioErr error) {
	o.mu.Lock()
	o.p, o.n, o.err = p, 0, nil
	pollErr = wait(o.fn)
	n, ioErr = o.n, o.err
	o.p, o.err = nil, nil
	o.mu.Unlock()
	return n, pollErr, ioErr
}

// opError is the error a TCPConn would return for op: io.EOF as it is,
// anything else as a *net.OpError naming op and the two addresses.
func opError(tc *net.TCPConn, op string, pollErr, ioErr error) error {
	switch {
	case pollErr != nil:
		// The RawConn's own *net.OpError says "raw-read"; it is fresh per
		// call, so it is renamed in place.
		if oe, ok := pollErr.(*net.OpError); ok {
			oe.Op = op
		}
		return pollErr
	case ioErr != nil && ioErr != io.EOF:
		return &net.OpError{Op: op, Net: "tcp", Source: tc.LocalAddr(), Addr: tc.RemoteAddr(), Err: ioErr}
	}
	return ioErr
}

// readOnce makes one read that finds bytes, an end or an error; it asks
// the netpoller to wait while the socket has nothing.
func (o *rawOp) readOnce(fd uintptr) bool {
	for {
		n, err := rawRead(int(fd), o.p)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return false
		case err != nil:
			o.err = os.NewSyscallError("read", err)
		case n == 0:
			o.err = io.EOF
		default:
			o.n = n
		}
		return true
	}
}

// writeAll writes what the socket takes of the rest of p; it asks the
// netpoller to wait while the socket is full.
func (o *rawOp) writeAll(fd uintptr) bool {
	for o.n < len(o.p) {
		n, err := rawWrite(int(fd), o.p[o.n:])
		switch {
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			return false
		case err != nil:
			o.err = os.NewSyscallError("write", err)
			return true
		default:
			o.n += n
		}
	}
	return true
}
