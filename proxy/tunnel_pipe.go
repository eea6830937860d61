package proxy

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"time"
)

// pipeJoin copies bytes both ways, on this goroutine and one more, until
// both directions end or the tunnel idles out. It runs the tunnels the
// engine cannot take (TLS clients, platforms without epoll). A half-close
// on one side is passed on as a half-close to the other. It returns when
// both connections are done.
func (t *tunnel) pipeJoin(client net.Conn) {
	t.last.Store(time.Now().UnixNano())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.pipe(t.backend, client)
		closeWrite(t.backend)
	}()
	t.pipe(client, t.br)
	closeWrite(client)
	<-done
	t.backend.Close()
	client.Close()
}

// pipe copies src to dst. Reads wait at most the idle timeout measured
// from the last byte in either direction, so a one-way stream keeps both
// directions alive.
//
// An idle tunnel parks one pipe per direction in Read, so what a pipe holds
// while it waits is paid per open tunnel. Each reads into a small buffer and
// takes a large one only while reads fill the small one (a bulk transfer),
// dropping it again at the first short read. On the backend side the 16 KB
// handshake reader is let go as soon as the bytes it read ahead are out.
func (t *tunnel) pipe(dst net.Conn, src io.Reader) {
	const (
		smallBuf = 512
		largeBuf = 16 << 10
	)
	small := make([]byte, smallBuf)
	buf := small
	rc, _ := src.(interface{ SetReadDeadline(time.Time) error })
	if rc == nil {
		// The backend side reads through its bufio.Reader; deadlines go on
		// the connection below it.
		rc = t.backend
	}
	for {
		if br, ok := src.(*bufio.Reader); ok && br.Buffered() == 0 {
			src, t.br = t.backend, nil
		}
		rc.SetReadDeadline(time.Unix(0, t.last.Load()).Add(t.idle))
		n, err := src.Read(buf)
		if n > 0 {
			t.last.Store(time.Now().UnixNano())
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		switch {
		case n == len(buf) && len(buf) == smallBuf:
			buf = make([]byte, largeBuf)
		case n < smallBuf && len(buf) != smallBuf:
			buf = small // the large buffer goes to the GC
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) &&
				time.Since(time.Unix(0, t.last.Load())) < t.idle {
				continue // the other direction is busy
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// Idle for the whole window: end both directions.
				t.backend.SetReadDeadline(time.Now())
				dst.SetReadDeadline(time.Now())
			}
			return
		}
	}
}

// closeWrite half-closes c when it can, else closes it.
func closeWrite(c net.Conn) {
	if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		c = u.UnsafeConn()
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}
