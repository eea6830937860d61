//go:build linux

// Command ceiling measures what a proxied keep-alive request costs in Go
// when one epoll loop, rather than a goroutine per connection, drives the
// sockets: a lower bound for latch's HTTP path, to weigh that design with
// figures (bench/ceiling.sh runs it against latch and HAProxy).
//
// It does the per-request work that latch's fasthttp path does and that a
// loop-driven path would still have to do: parse the request head with
// fasthttp's RequestHeader, find the Cookie, add X-Forwarded-For, -Proto
// and -Host, write the head anew to a kept-alive backend connection, parse
// the answer's head with fasthttp's ResponseHeader, copy it into a second
// header and write that with the body to the client. It does not route,
// look sticky tokens up, count or log (together well under a microsecond
// in latch's Go benchmarks), and it serves only what the load generator
// sends: requests without a body, answers of declared length that fit its
// buffer. Anything else closes the connection. It is a measuring device,
// not a proxy.
//
// Like latch's tunnel engine, the loop's epoll descriptor is watched by
// Go's netpoller, so the loop parks as a goroutine when it has nothing to
// do, and its reads, writes and waits are raw system calls.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"
	"golang.org/x/sys/unix"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18000", "address to serve on")
	backends := flag.String("backends", "127.0.0.1:19001,127.0.0.1:19002", "backend addresses; each client connection gets one, in turn")
	flag.Parse()
	if err := run(*listen, strings.Split(*backends, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "ceiling:", err)
		os.Exit(1)
	}
}

func run(listen string, backends []string) error {
	lp, err := netip.ParseAddrPort(listen)
	if err != nil || !lp.Addr().Is4() {
		return fmt.Errorf("--listen %q: want IPv4:PORT", listen)
	}
	l := &loop{conns: map[int]*conn{}, buf: make([]byte, 64<<10)}
	for _, b := range backends {
		bp, err := netip.ParseAddrPort(b)
		if err != nil || !bp.Addr().Is4() {
			return fmt.Errorf("--backends %q: want IPv4:PORT", b)
		}
		l.backends = append(l.backends, &unix.SockaddrInet4{Port: int(bp.Port()), Addr: bp.Addr().As4()})
	}
	l.br = bufio.NewReaderSize(&l.src, 20<<10)
	if l.lfd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0); err != nil {
		return err
	}
	unix.SetsockoptInt(l.lfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(l.lfd, &unix.SockaddrInet4{Port: int(lp.Port()), Addr: lp.Addr().As4()}); err != nil {
		return fmt.Errorf("listen %s: %w", listen, err)
	}
	if err := unix.Listen(l.lfd, 4096); err != nil {
		return err
	}
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return err
	}
	unix.SetNonblock(l.epfd, true)
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, l.lfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(l.lfd)}); err != nil {
		return err
	}
	ep := os.NewFile(uintptr(l.epfd), "epoll")
	if err := ep.SetReadDeadline(time.Time{}); err != nil {
		return fmt.Errorf("epoll descriptor not pollable: %w", err)
	}
	rc, err := ep.SyscallConn()
	if err != nil {
		return err
	}
	events := make([]unix.EpollEvent, 256)
	drain := func(epfd uintptr) bool {
		for {
			n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, epfd, uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
			if e != 0 || n == 0 {
				return false // park until the epoll descriptor is readable
			}
			for _, ev := range events[:n] {
				l.event(int(ev.Fd), ev.Events)
			}
		}
	}
	for {
		if err := rc.Read(drain); err != nil {
			return err
		}
	}
}

// conn is one socket on the loop: a client's, or the backend connection
// that serves that client (peer links the two).
type conn struct {
	fd      int
	backend bool
	peer    *conn
	in, out []byte // bytes read and not yet used; bytes not yet written
	ip      netip.Addr
	waiting bool // a client whose request is at its backend
	req     fasthttp.RequestHeader
	resp    fasthttp.ResponseHeader
}

type loop struct {
	epfd, lfd int
	backends  []*unix.SockaddrInet4
	next      int
	conns     map[int]*conn
	buf       []byte // every read lands here first
	src       bytes.Reader
	br        *bufio.Reader // fasthttp's parsers read heads from it
	head      fasthttp.ResponseHeader
	scratch   []byte
}

var (
	crlf2        = []byte("\r\n\r\n")
	hdrCookie    = []byte("Cookie")
	hdrFor       = []byte("X-Forwarded-For")
	hdrProto     = []byte("X-Forwarded-Proto")
	hdrHost      = []byte("X-Forwarded-Host")
	valHTTP      = []byte("http")
	errMalformed = errors.New("not a request this loop serves")
)

func (l *loop) event(fd int, ev uint32) {
	if fd == l.lfd {
		l.accept()
		return
	}
	c := l.conns[fd]
	if c == nil {
		return
	}
	if ev&unix.EPOLLOUT != 0 && len(c.out) > 0 && !l.flush(c) {
		return
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) == 0 {
		return
	}
	if !l.fill(c) {
		l.close(c)
		return
	}
	var err error
	if c.backend {
		err = l.answer(c)
	} else {
		err = l.request(c)
	}
	if err != nil {
		l.close(c)
	}
}

func (l *loop) accept() {
	for {
		fd, sa, err := unix.Accept4(l.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		c := &conn{fd: fd}
		if a, ok := sa.(*unix.SockaddrInet4); ok {
			c.ip = netip.AddrFrom4(a.Addr)
		}
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1) // as Go's net package does
		if l.watch(c) != nil {
			unix.Close(fd)
		}
	}
}

func (l *loop) watch(c *conn) error {
	l.conns[c.fd] = c
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(c.fd)}
	return unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev)
}

// close closes c and the connection paired with it.
func (l *loop) close(c *conn) {
	for _, x := range []*conn{c, c.peer} {
		if x != nil && l.conns[x.fd] == x {
			delete(l.conns, x.fd)
			unix.Close(x.fd)
		}
	}
}

// fill reads what c's socket holds into c.in. It reports false when the
// peer ended or the socket failed. A short read empties an edge-triggered
// socket: the next bytes raise a new edge.
func (l *loop) fill(c *conn) bool {
	for {
		n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(c.fd), uintptr(unsafe.Pointer(&l.buf[0])), uintptr(len(l.buf)))
		switch {
		case e == unix.EAGAIN:
			return true
		case e != 0 || n == 0:
			return false
		}
		c.in = append(c.in, l.buf[:n]...)
		if int(n) < len(l.buf) {
			return true
		}
	}
}

// send queues p for c and writes as much as the socket takes.
func (l *loop) send(c *conn, p []byte) bool {
	c.out = append(c.out, p...)
	return l.flush(c)
}

func (l *loop) flush(c *conn) bool {
	for len(c.out) > 0 {
		n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(c.fd), uintptr(unsafe.Pointer(&c.out[0])), uintptr(len(c.out)))
		switch {
		case e == unix.EAGAIN:
			return true // the socket's next writable edge flushes the rest
		case e != 0:
			l.close(c)
			return false
		}
		c.out = c.out[:copy(c.out, c.out[n:])]
	}
	return true
}

// parseHead parses the message head at the start of in with parse, and reports
// its length, or 0 while the head is incomplete.
func (l *loop) parseHead(in []byte, parse func(*bufio.Reader) error) (int, error) {
	end := bytes.Index(in, crlf2)
	if end < 0 {
		return 0, nil
	}
	l.src.Reset(in[:end+4])
	l.br.Reset(&l.src)
	if err := parse(l.br); err != nil {
		return 0, err
	}
	return end + 4, nil
}

// request sends the client's next request to its backend.
func (l *loop) request(c *conn) error {
	if c.waiting {
		return nil // pipelined: taken when the answer is out
	}
	n, err := l.parseHead(c.in, c.req.Read)
	if err != nil || n == 0 {
		return err
	}
	if c.req.ContentLength() > 0 || c.req.ContentLength() == -1 { // a body of declared length, or chunked
		return errMalformed
	}
	c.in = c.in[:copy(c.in, c.in[n:])]
	h := &c.req
	_ = h.PeekBytes(hdrCookie)
	h.SetCanonical(hdrFor, c.ip.AppendTo(l.scratch[:0]))
	h.SetCanonical(hdrProto, valHTTP)
	h.SetCanonical(hdrHost, h.Host())
	b := c.peer
	if b == nil {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		b = &conn{fd: fd, backend: true, peer: c}
		c.peer = b
		if err := l.watch(b); err != nil {
			unix.Close(fd)
			return err
		}
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		if err := unix.Connect(fd, l.backends[l.next%len(l.backends)]); err != nil && err != unix.EINPROGRESS {
			return err
		}
		l.next++
	}
	c.waiting = true
	l.scratch = h.AppendBytes(l.scratch[:0])
	l.send(b, l.scratch) // a failed send has closed both
	return nil
}

// answer gives the backend's answer to its client once all of it is here.
func (l *loop) answer(b *conn) error {
	c := b.peer
	n, err := l.parseHead(b.in, b.resp.Read)
	if err != nil || n == 0 {
		return err
	}
	size := b.resp.ContentLength()
	if size < 0 {
		return errMalformed
	}
	if len(b.in) < n+size {
		return nil // the body's rest comes with the next edge
	}
	l.head.Reset()
	b.resp.CopyTo(&l.head)
	l.scratch = l.head.AppendBytes(l.scratch[:0])
	l.scratch = append(l.scratch, b.in[n:n+size]...)
	b.in = b.in[:copy(b.in, b.in[n+size:])]
	c.waiting = false
	if !l.send(c, l.scratch) {
		return nil // closed
	}
	if len(c.in) > 0 {
		return l.request(c)
	}
	return nil
}
