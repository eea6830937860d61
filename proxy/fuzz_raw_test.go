package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// FuzzRawRequest feeds raw bytes to latch's real server (parser, hygiene
// checks, routing, sticky decision and forwarding to a real backend) and
// checks that it never panics, always answers in HTTP or closes, and never
// answers a smuggling shape with a success.
func FuzzRawRequest(f *testing.F) {
	for _, seed := range []string{
		"GET /socket.io/?EIO=4 HTTP/1.1\r\nHost: x\r\nCookie: heyy=abc\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",
		"GET /meta HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
		"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
		"\x00\x01\x02",
		"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
	} {
		f.Add([]byte(seed))
	}
	h := newHotPath(f, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	srv := h.s.newServer("web")
	go srv.Serve(ln)
	f.Cleanup(func() { srv.Shutdown() })

	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		// Write everything and half-close: latch answers what it can parse
		// and closes, so the read ends without waiting on a timer.
		go func() { c.Write(raw); c.(*net.TCPConn).CloseWrite() }()
		out, _ := io.ReadAll(c)
		if len(out) > 0 && !bytes.HasPrefix(out, []byte("HTTP/1.1 ")) {
			t.Fatalf("answered %q to %q", out[:min(len(out), 40)], raw)
		}
		if bytes.Contains(raw, []byte("Transfer-Encoding")) && bytes.Contains(bytes.ToLower(raw), []byte("content-length")) &&
			bytes.HasPrefix(out, []byte("HTTP/1.1 2")) && bytes.Count(out, []byte("HTTP/1.1 ")) == 1 &&
			fasthttpParsesAsChunkedWithLength(raw) {
			t.Fatalf("a request with both Content-Length and Transfer-Encoding succeeded: %q", raw)
		}
	})
}

// fasthttpParsesAsChunkedWithLength reports whether raw's first request
// has both framing headers as whole header lines.
func fasthttpParsesAsChunkedWithLength(raw []byte) bool {
	var req fasthttp.Request
	if err := req.Read(bufioReader(raw)); err != nil {
		return false
	}
	return req.Header.ContentLength() == -1 && bytes.Contains(bytes.ToLower(req.Header.RawHeaders()), []byte("\ncontent-length:"))
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
